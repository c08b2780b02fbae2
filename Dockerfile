# The Parsec node image used by docker-compose.yml: Python 3.11, the pinned dependencies, the
# npm tools (solc, anvil, htmx) and the compiled contracts.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm gcc libc6-dev libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt -c requirements/lock.txt
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN mkdir -p static/vendor/swagger-ui \
 && cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js \
 && cp node_modules/htmx-ext-ws/dist/ws.min.js static/vendor/htmx-ext-ws.min.js \
 && cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js \
       node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js static/vendor/swagger-ui/ \
 && node contracts/build.mjs \
 && python -m devstack.native
RUN useradd --system --home /var/lib/parsec parsec && mkdir -p /var/lib/parsec && chown parsec /var/lib/parsec
USER parsec
EXPOSE 8000
