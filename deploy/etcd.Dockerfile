# etcd from Debian's etcd-server (and etcdctl from etcd-client, for the health
# check), on `scratch`, like Sundial's image.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 data/ /var/lib/etcd/
ENV PATH=/usr/bin
USER 65532:65532
ENTRYPOINT ["/usr/bin/etcd"]
