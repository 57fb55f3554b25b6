# meshos node image. Build: docker build -t meshos .
# Run:   docker run -d --name meshos -p 7946:7946 -v meshos-data:/var/lib/meshos meshos [--bootstrap ADDR ...]
# See docs/operations.md ("Docker").

FROM node:24-slim AS build
WORKDIR /src
# classic-level ships prebuilt binaries for linux-x64/arm64; the toolchain is only a fallback for other platforms.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production \
    MESH_DATA_DIR=/var/lib/meshos \
    MESH_LOG_FORMAT=json
WORKDIR /opt/meshos
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN groupadd --system meshos && useradd --system --gid meshos --home-dir /var/lib/meshos --shell /usr/sbin/nologin meshos \
 && mkdir -p /var/lib/meshos && chown meshos:meshos /var/lib/meshos && chmod 0700 /var/lib/meshos \
 && printf '#!/bin/sh\nexec node --max-semi-space-size=16 --single-threaded-gc /opt/meshos/dist/cli/bin.js "$@"\n' > /usr/local/bin/mesh && chmod 0755 /usr/local/bin/mesh
USER meshos
VOLUME /var/lib/meshos
EXPOSE 7946
# The API stays on loopback inside the container (use `docker exec meshos mesh status`). To publish it, add
# `--api 0.0.0.0:7947` and create a token first (the node refuses an off-loopback API without one).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["node", "-e", "fetch('http://127.0.0.1:7947/v1/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The first SIGTERM (docker stop) is a graceful leave that takes up to 20 s: use `docker stop -t 30`.
STOPSIGNAL SIGTERM
# Through the wrapper, so the daemon gets its Node flags; the data dir and listen address come from MESH_DATA_DIR and the
# default (/ip4/0.0.0.0/tcp/7946), not flags, so that `-e MESH_LISTEN=...` and a config file can still set them.
ENTRYPOINT ["/usr/local/bin/mesh", "start"]
