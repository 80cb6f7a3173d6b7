# pinreset worker / scripts image (used by docker-compose.yml for `migrate` and `worker`).
# glibc-based slim image: the Temporal worker's native core-bridge ships prebuilt glibc binaries.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Dependencies first, so source edits reuse this layer.
# All dependencies, dev included (no --omit=dev): `npm run build` needs TypeScript, and the
# operator scripts (`npm run accounts`, the CLI) still run TypeScript through `tsx`.
# --ignore-scripts + rebuild: the dependencies' install scripts run, the project's own "prepare"
# does not (it installs the Temporal CLI for the local stack, which the image doesn't need, and
# its source isn't copied yet, so a plain `npm ci` would fail here).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild && npm cache clean --force

COPY . .

# `npm run build`: the compiled JavaScript the services run (dist/workers/main.js,
# dist/scripts/migrate.js, ...) and the prebuilt workflow bundle (WORKFLOW_BUNDLE_PATH): workers
# start without running webpack, and every replica runs the very same workflow code, built once
# with the image. (dist/ is in .dockerignore: always built from the copied source.)
RUN npm run build && test -s dist/workflow-bundle.js && test -s dist/workers/main.js
ENV WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js

# Set after `npm ci`, which would otherwise skip devDependencies.
ENV NODE_ENV=production

# Unprivileged at run time; the files stay root-owned and read-only to the app.
USER node

# Overridden per service in docker-compose.yml. node itself gets SIGTERM and drains; run under an
# init (compose `init: true`).
CMD ["node", "--import", "./scripts/esm-extensionless.mjs", "dist/workers/main.js"]
