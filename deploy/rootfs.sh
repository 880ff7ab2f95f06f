#!/usr/bin/env bash
# Assembles the runtime root file system of the ecs-reconciler image:
#
#   deploy/rootfs.sh BINARY ROOTFS
#
# ROOTFS gets the binary as /ecs-reconciler, the shared libraries and the
# dynamic loader it links (from `ldd`, symlinks resolved, same paths), the
# CA bundle (the AWS SDK's rustls reads the system roots), /etc/passwd and
# /etc/group with the non-root user 65532, nsswitch.conf, /tmp and the
# config directory. deploy/Dockerfile runs it in its builder stage;
# scripts/image-test.sh runs it on the host and starts the release binary
# inside the result with chroot, as the image would.
set -euo pipefail
binary="$1"
rootfs="$2"
install -D -m 0755 "$binary" "$rootfs/ecs-reconciler"
ldd "$rootfs/ecs-reconciler" \
  | grep -o '/[^ ]*' \
  | sort -u \
  | xargs -I '{}' cp -L --parents '{}' "$rootfs/"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
install -d -m 1777 "$rootfs/tmp"
install -d -m 0755 -o 65532 -g 65532 "$rootfs/home/nonroot"
install -d -m 0755 "$rootfs/etc/ecs-reconciler"
