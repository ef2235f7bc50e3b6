# oz-bridge container image.
#
#   scripts/build-image.sh            # Docker where there is one, else buildah (see the README, "Deploying")
#   docker run --rm IMAGE demo        # no credentials, config or volume needed
#
# The "build" stage makes the wheel and a virtualenv holding it and its dependencies; the final
# stage is the base image plus Debian's Python and that virtualenv, nothing else: no compiler, no
# pip, no build cache, no tests.

# Debian's own Python (3.11 on bookworm), so the base is one image that a plain Debian bootstrap
# reproduces exactly; pin it by digest for reproducible builds: --build-arg BASE=debian:bookworm-slim@sha256:…
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS python
# Package versions float with Debian's point releases on purpose: the archive keeps only the newest,
# so a pinned version stops installing at the next security update; pin the BASE digest instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/build-tools \
    && python3 -m venv --without-pip /opt/oz-bridge

# The dependency list alone, so that only a change to it installs the dependencies again.
FROM python AS requirements
COPY pyproject.toml /tmp/
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > /tmp/requirements.txt

FROM python AS build
# Optional, for the build only: a private index, or a pip.conf mounted into the build (with buildah,
# scripts/build-image.sh mounts one when this machine's pip needs a CA bundle or an index of its own).
ARG PIP_INDEX_URL
ARG PIP_CONFIG_FILE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN /opt/build-tools/bin/pip --python /opt/oz-bridge/bin/python install --no-cache-dir -r /tmp/requirements.txt
# The build context is pyproject.toml, README.md and bridge/ (see .dockerignore).
COPY . /src/
RUN /opt/build-tools/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist /src \
    && /opt/build-tools/bin/pip --python /opt/oz-bridge/bin/python install --no-cache-dir --no-deps /tmp/dist/oz_bridge-*.whl


FROM ${BASE}

# python3 runs the virtualenv; ca-certificates verifies Oz, Slack and webhook receivers over TLS;
# tzdata gives digests their IANA zones. Versions float with the base (see the build stage).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    && groupadd --gid 10001 oz-bridge \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /var/lib/oz-bridge \
        --shell /usr/sbin/nologin oz-bridge \
    && mkdir -p /etc/oz-bridge /var/lib/oz-bridge \
    && chown 10001:10001 /var/lib/oz-bridge

COPY --from=build /opt/oz-bridge /opt/oz-bridge

ENV PATH=/opt/oz-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OZ_BRIDGE_CONFIG=/etc/oz-bridge/bridge.yaml \
    OZ_BRIDGE_DATABASE_URL=sqlite:////var/lib/oz-bridge/bridge.db

# The working directory is the data volume: with a read-only root filesystem and no writable /tmp,
# Python's tempfile falls back to it, so `demo` still finds somewhere to put its database.
WORKDIR /var/lib/oz-bridge
VOLUME ["/var/lib/oz-bridge"]
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/oz-bridge/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OZ_BRIDGE_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["oz-bridge"]
CMD ["run"]

# Last, so that a new revision changes only the metadata, never a cached layer.
ARG VERSION=0.1.0 REVISION=unknown SOURCE=https://github.com/oz-bridge/oz-bridge
LABEL org.opencontainers.image.title="oz-bridge" \
      org.opencontainers.image.description="Connects Warp's Oz cloud agents to Slack and signed webhooks." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
