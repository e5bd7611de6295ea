# Burndown server against an external PostgreSQL (see "Running in a container" in README.md):
#   docker build -t burndown .
#   docker run -p 7070:7070 -p 7071:7071 -e DATABASE_URL=postgres://burndown_server:...@db/burndown \
#     -e BURNDOWN_MIGRATION_DATABASE_URL=postgres://owner:...@db/burndown burndown
# The first stage installs everything and builds the admin UI; the second keeps the
# production dependencies, the sources the server runs (TypeScript, through tsx) and the built UI.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
COPY server/package.json server/
COPY admin-ui/package.json admin-ui/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto proto
COPY sdk sdk
COPY server server
COPY admin-ui admin-ui
RUN node admin-ui/scripts/build.mjs --force && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=7070 GRPC_PORT=7071
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
# 7070: Connect, gRPC-Web, the admin UI, /metrics; 7071: gRPC (h2c).
EXPOSE 7070 7071
# The standard gRPC health check, asked over Connect's JSON protocol on the HTTP port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||7070)+'/grpc.health.v1.Health/Check',{method:'POST',headers:{'content-type':'application/json'},body:'{}'}).then(r=>r.json()).then(b=>process.exit(b.status==='SERVING'?0:1),()=>process.exit(1))"]
# The server drains its calls on SIGTERM (docker stop) before it exits.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "server/src/main.ts"]
