# Sundial's image: our release binaries and the shared libraries they link, on
# `scratch` (this machine has no registry to pull a base image from). Built by
# `make images` (deploy/images.sh), which stages rootfs/ and data/ beside it.
FROM scratch
COPY rootfs/ /
# The data directory belongs to the unprivileged user the services run as; a
# named volume mounted there starts as a copy of it (owner included).
COPY --chown=65532:65532 data/ /var/lib/sundial/
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /var/lib/sundial
# No default command: each service names its binary (sundial-meta, -store, …).
