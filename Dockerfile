# gitops-agent container image (docs/install.md).
#
#   docker build -t gitops-agent:0.1.0 .                  # build inside the image (default target)
#   scripts/build-agent-image.sh --prebuilt               # or: from a host build, no network in the build
#
# Two ways to the same runtime image:
#   runtime  (default, last stage): the `build` stage installs the dependencies from the npm
#            registry, compiles, and prunes the dev dependencies. The builder needs to reach
#            the registry.
#   prebuilt (--target prebuilt): the context is a staged directory whose prebuilt/ already
#            holds dist/, schema/, package.json and the production node_modules/
#            (scripts/build-agent-image.sh makes it); nothing is downloaded. It comes BEFORE
#            the build stage in this file, so even the legacy builder (which runs every stage
#            up to the target) never runs `npm install` for it. The tests use it: their
#            engine has no outside network.
#
# NODE_IMAGE is the base of every stage: the official image by default; the tests pass a local
# stand-in built from the host (test/harness/node-base-image.ts), so nothing is pulled.
# No `# syntax=` line on purpose: it would make BuildKit fetch a frontend image.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# base: everything of the runtime image except the application itself
FROM ${NODE_IMAGE} AS base
ARG AGENT_UID=1000
ARG AGENT_GID=1000
ENV NODE_ENV=production \
    AGENT_STATE_DIR=/var/lib/gitops-agent
# AGENT_CONFIG is deliberately NOT set: the agent refuses to start when it names a missing file.
# Mount the file and set it: -v /etc/gitops-agent:/etc/gitops-agent:ro -e AGENT_CONFIG=/etc/gitops-agent/config.yaml
WORKDIR /opt/gitops-agent
# `agent` on PATH, for `docker exec gitops-agent agent status`.
# The state directory belongs to uid 1000 so that the non-root variant (--user 1000:1000
# --group-add <gid of the socket>) can use a fresh volume; root (the default) writes anyway.
RUN mkdir -p /var/lib/gitops-agent /etc/gitops-agent \
 && chown "${AGENT_UID}:${AGENT_GID}" /var/lib/gitops-agent \
 && chmod 0700 /var/lib/gitops-agent \
 && printf '#!/bin/sh\nexec node /opt/gitops-agent/dist/agent/cli/main.js "$@"\n' > /usr/local/bin/agent \
 && chmod 0755 /usr/local/bin/agent
LABEL org.opencontainers.image.title="gitops-agent" \
      org.opencontainers.image.description="GitOps reconciler for Docker hosts: desired state from Git, transactional updates with health gate, backup and automatic rollback" \
      org.opencontainers.image.licenses="Apache-2.0"
VOLUME ["/var/lib/gitops-agent"]
# The webhook (and /healthz) listener: 127.0.0.1:9180 by default, reached with --network host.
EXPOSE 9180
# SIGTERM lets the transaction in flight finish (a second SIGTERM cuts it short): give
# `docker stop` time (default 10 s, then SIGKILL): `docker run --stop-timeout 900`, `docker stop -t 900`.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "/opt/gitops-agent/packaging/healthcheck.mjs"]
ENTRYPOINT ["node", "/opt/gitops-agent/dist/agent/cli/main.js"]
CMD ["run"]

# ---------------------------------------------------------------------------------------------
# prebuilt: the application from a staged context, whose prebuilt/ directory holds package.json,
# dist/, schema/, node_modules/ and packaging/healthcheck.mjs (scripts/build-agent-image.sh).
# The legacy builder builds every stage when no --target is given: in the repository's context
# there is no prebuilt/ (the [t] pattern then matches nothing, which COPY accepts beside
# package.json) and this stage stays an unused shell.
FROM base AS prebuilt
COPY package.json prebuil[t] ./
RUN if [ -d dist ]; then node dist/agent/cli/main.js --version; \
    else echo "no prebuilt/ in this context: stage not used (build it with scripts/build-agent-image.sh --prebuilt)"; fi

# ---------------------------------------------------------------------------------------------
# build: dependencies from the registry, compile, then keep only the production dependencies
FROM ${NODE_IMAGE} AS build
# For builders behind a registry mirror or a TLS-inspecting proxy (set only for the npm steps):
#   --build-arg NPM_CONFIG_REGISTRY=https://npm.internal/  --build-arg NODE_EXTRA_CA_CERTS=<CA file in the image>
# Without network access at all, use the prebuilt target instead.
ARG NPM_CONFIG_REGISTRY
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: the lock file may lack the optional packages of other platforms
# (a mirror without them cannot record them), which `npm ci` refuses. --ignore-scripts: the
# package's `prepare` (a build) cannot run before the sources are here, and no production
# dependency needs an install script (ssh2 and cpu-features have JavaScript fallbacks).
RUN npm install --no-audit --no-fund --no-update-notifier --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY schema ./schema
COPY agent ./agent
COPY scripts/compile-schemas.mjs ./scripts/
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache

# ---------------------------------------------------------------------------------------------
# runtime (default): the application from the build stage
FROM base AS runtime
COPY --from=build /src/package.json ./
COPY packaging/healthcheck.mjs ./packaging/
COPY --from=build /src/schema ./schema
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN node dist/agent/cli/main.js --version
