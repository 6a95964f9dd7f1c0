/**
 * The integration suite's operator policy: the test stacks run on the host network and bind
 * temporary directories, which the default policy refuses (test/integration/policy.test.ts
 * runs the agent with the default one). Every agent a test starts inherits AGENT_POLICY_FILE
 * (and AGENT_CHECK_TAGS=false, below).
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PERMISSIVE_POLICY = `# written by test/harness/test-policy-setup.ts
requireDigest: false
binds: [/]
networkModes: [bridge, none, service, container, host]
networkDrivers: ['*']
externalNetworks: ['*']
allowRootUser: true
allowPrivileged: true
capabilities: [ALL]
devices: [/dev]
allowHostNamespaces: true
securityOptions: ['*']
jobImages: {allow: ['*'], requireDigest: false}
volumes: {names: ['*'], drivers: ['*'], types: ['*']}
probeHosts: ['*']
`;

const file = join(tmpdir(), `gadt-test-policy-${process.pid}.yaml`);
writeFileSync(file, PERMISSIVE_POLICY);
process.env.AGENT_POLICY_FILE = file;
// Tag checks ask the registry: the test stacks name registries that do not exist (reg.example)
// and Docker Hub, which the network rule forbids; policy.test.ts turns them on against the local registry.
process.env.AGENT_CHECK_TAGS = 'false';
