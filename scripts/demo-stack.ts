import { resolve } from 'node:path';
import type { FixtureImages } from '../test/harness/images.js';

/** The demo's desired state: api and web, each at a version of the fixture image. */
export function stackYaml(images: FixtureImages, ports: { api: number; web: number }, api: string, web: string): string {
  const img = (v: string) => images[v as keyof FixtureImages].pinned;
  return `# yaml-language-server: $schema=${resolve(import.meta.dirname, '../schema/desired-state.schema.json')}
name: demo
services:
  api:
    image: ${img(api)}
    network_mode: host
    init: true
    restart: unless-stopped
    environment:
      PORT: "${ports.api}"
    volumes: ["api-data:/data"]
    x-agent:
      policy: manual
      backup:
        volumes: [api-data]        # backed up (restic) before every update
        restoreOnRollback: true    # and put back if the update is rolled back
      health:
        timeout: 30s
        stabilization: 3s
        probes:
          - http: http://127.0.0.1:${ports.api}/
            interval: 500ms
  web:
    image: ${img(web)}
    network_mode: host
    init: true
    restart: unless-stopped
    depends_on:
      api:
        condition: service_healthy
    environment:
      PORT: "${ports.web}"
    x-agent:
      policy: auto
      health:
        timeout: 30s
        stabilization: 3s
volumes:
  api-data: {}
`;
}
