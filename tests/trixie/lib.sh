# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-only
#
# Debian 13 (trixie) trees on a Debian 12 host, for tests/trixie/build
# (xmig built and tested against trixie's Xen) and tests/trixie/tree (a
# tree for other tools, e.g. the testbed's trixie QEMU).  Sourced by bash
# scripts with set -euo pipefail; they set `trap trixie_cleanup EXIT`.
#
# trixie_tree DIR LAYOUT PACKAGE... sets trixie_root to DIR/KEY, a minimal
# trixie with PACKAGE... installed (apt, no recommends), built once:
# 1. installs debootstrap on the host.  debootstrap checks the signature
#    of trixie's InRelease with bookworm's debian-archive-keyring: its
#    point releases added trixie's keys, and trixie's InRelease is signed
#    by bookworm's archive key too;
# 2. KEY is a hash of LAYOUT, the suite, the mirror and the package list,
#    so a changed list builds a new tree; bump LAYOUT when the way a
#    caller's tree is made changes.  The tree is built under a temporary
#    name and renamed when complete: a tree cut short is never taken for a
#    finished one.  Any other entry of DIR is removed when a tree is built
#    (runs cut short, older package lists): DIR belongs to one caller.
# The suite is trixie unless the caller sets trixie_suite first (after
# sourcing): any Debian suite debootstrap knows, e.g. sid or forky (the
# host's debootstrap may predate the suite; every Debian suite since
# squeeze uses its sid script), or SUITE-backports: SUITE debootstrapped,
# then the PACKAGEs installed from SUITE-backports (apt -t), e.g. the
# testbed's newer QEMU.
# Everything runs under nice/ionice: the machine may be benchmarking.
# XMIG_TRIXIE_MIRROR overrides the mirror.

trixie_suite=trixie
trixie_mirror=${XMIG_TRIXIE_MIRROR:-http://deb.debian.org/debian}

# One trixie tree serves tests/trixie/build and the testbed's trixie host
# (tests/testbed/run, XMIG_TESTBED_DIST=trixie): one debootstrap, not two
# (each took 5 to 18 minutes here).  They use it one after the other.
#   the build and make check: the toolchain and libraries; python3 (the
#     daemon tests' client and receiver), busybox-static and dash
#     (test-stream's shells), systemd (systemd-socket-activate), util-linux
#     (setpriv), valgrind, xen-utils-4.20 (Xen's verify-stream-v2);
#   tests/package/build-deb: debhelper, git, lintian and systemd-dev
#     (systemd.pc: trixie moved it out of systemd);
#   the testbed host: Xen 4.20's hypervisor and tools, xenstore-utils, the
#     HVM device model and firmware, cpio and xz-utils (mkinitramfs), and
#     what Xen's `make -C xen` needs (bison, flex, dpkg-dev, lsb-release).
# shellcheck disable=SC2034 # for the scripts that source this file
trixie_packages=(build-essential autoconf automake libtool pkg-config autoconf-archive
    make libxen-dev libevent-dev libjson-c-dev jq python3 busybox-static dash bash
    systemd util-linux valgrind xen-utils-4.20 debhelper git lintian systemd-dev
    xen-hypervisor-4.20-amd64 xenstore-utils qemu-system-xen seabios qemu-system-data
    cpio xz-utils bison flex dpkg-dev lsb-release)
# Bump when the way the tree is made changes.
# shellcheck disable=SC2034
trixie_layout=3
# shellcheck disable=SC2034
trixie_cache=${XMIG_TRIXIE_CACHE:-$HOME/.cache/xmig-trixie}

quiet() { nice -n 19 ionice -c3 "$@"; }
log() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

# Mounts made under a tree, unmounted in reverse order on any exit.
mounts=()
unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
    done
    mounts=()
}
# A tree never goes away while something is mounted under it: rm -rf would
# follow the mount into the host's /dev or /proc.
remove_tree() {
    local m
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m"
    done < <(findmnt -rn -o TARGET | grep -F "$1/" | sort -r)
    rm -rf --one-file-system "$1"
}
trixie_tmp=
# shellcheck disable=SC2317 # called by the caller's trap
trixie_cleanup() {
    unmount_all
    if [ -n "$trixie_tmp" ] && [ -d "$trixie_tmp" ]; then remove_tree "$trixie_tmp"; fi
    if [ -n "$trixie_tmp" ]; then rm -f "$trixie_tmp.debootstrap.log"; fi
}

bind() { # bind SRC ROOT: SRC at the same path under ROOT, private
    mkdir -p "$2$1"
    mount --bind "$1" "$2$1"
    mounts+=("$2$1")
    # Mounts made under it later must not reach the host's SRC.
    mount --make-private "$2$1"
}
mount_api() { # mount_api ROOT: what the builds and tests need in a chroot
    mount -t proc proc "$1/proc"
    mounts+=("$1/proc")
    mount -t sysfs sysfs "$1/sys"
    mounts+=("$1/sys")
    bind /dev "$1"
    bind /dev/pts "$1"
    bind /dev/shm "$1"
}
in_root() { # in_root ROOT CMD...
    local r=$1
    shift
    quiet chroot "$r" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# trixie_run ROOT DIR... -- CMD...: CMD in a chroot of the finished tree
# ROOT, with /proc, /sys, /dev and each host DIR at its own path.  The
# mounts are made in a mount namespace of their own, so they go with the
# command however it ends (the testbed's runner may be killed mid-build),
# and no later rm -rf of the tree can follow one into the host.
trixie_run() {
    local root=$1 dirs=()
    shift
    while (($#)) && [ "$1" != -- ]; do
        dirs+=("$1")
        shift
    done
    shift
    # shellcheck disable=SC2016 # expanded by the inner shell
    quiet unshare --mount --propagation private /bin/bash -euc '
        root=$1 n=$2
        shift 2
        mount -t proc proc "$root/proc"
        mount -t sysfs sysfs "$root/sys"
        for d in /dev /dev/pts /dev/shm "${@:1:n}"; do
            mkdir -p "$root$d"
            mount --bind "$d" "$root$d"
        done
        shift "$n"
        exec chroot "$root" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 TERM=dumb \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' trixie_run "$root" "${#dirs[@]}" "${dirs[@]}" "$@"
}

trixie_host_tools() {
    local need=() p
    for p in debootstrap debian-archive-keyring; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
    done
    if ((${#need[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [ ! -e /usr/share/keyrings/debian-archive-trixie-stable.gpg ]; then
        # The keys came with bookworm's point releases: an old keyring package
        # cannot check trixie's InRelease.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
    fi
    if [ ! -e /usr/share/debootstrap/scripts/sid ]; then
        echo "this debootstrap has no script for sid" >&2
        return 1
    fi
}

trixie_tree() { # trixie_tree DIR LAYOUT PACKAGE...: sets trixie_root
    local dir=$1 layout=$2 key old
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    shift 2
    local base=${trixie_suite%-backports} script target=()
    key=$(printf '%s\n' "$layout" "$trixie_suite" "$trixie_mirror" "$@" | sha256sum | cut -c1-16)
    trixie_root=$dir/$key
    if [ -e "$trixie_root/.complete" ]; then
        log "$trixie_suite tree: $trixie_root (cached)"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "building the $trixie_suite tree $trixie_root needs root (debootstrap, chroot, mount)" >&2
        return 1
    fi
    log "host tools"
    trixie_host_tools
    mkdir -p "$dir"
    # Left by runs that were cut short or by an older package list.
    for old in "$dir"/*; do
        [ -e "$old" ] || continue
        [ "$old" = "$trixie_root" ] && [ -e "$old/.complete" ] && continue
        remove_tree "$old"
    done
    trixie_tmp=$(mktemp -d "$dir/tmp.XXXXXX")
    # The root of the tree: mktemp made it 0700, and the tests run programs
    # as nobody (test-permission.sh), and apt downloads as _apt.
    chmod 755 "$trixie_tmp"
    script=/usr/share/debootstrap/scripts/$base
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    log "debootstrap $base from $trixie_mirror into $trixie_tmp"
    quiet debootstrap --variant=minbase --keyring="$keyring" "$base" "$trixie_tmp" \
        "$trixie_mirror" "$script" >"$trixie_tmp.debootstrap.log" 2>&1 ||
        { tail -30 "$trixie_tmp.debootstrap.log" >&2; return 1; }
    grep -m1 'Valid Release signature' "$trixie_tmp.debootstrap.log" ||
        { echo "debootstrap did not report a valid signature" >&2; return 1; }
    rm -f "$trixie_tmp.debootstrap.log"
    log "packages: $*"
    cp /etc/resolv.conf "$trixie_tmp/etc/resolv.conf"
    if [ "$base" != "$trixie_suite" ]; then
        echo "deb $trixie_mirror $trixie_suite main" >"$trixie_tmp/etc/apt/sources.list.d/$trixie_suite.list"
        target=(-t "$trixie_suite")
    fi
    # Nothing installed in the chroot starts a service.
    printf '#!/bin/sh\nexit 101\n' >"$trixie_tmp/usr/sbin/policy-rc.d"
    chmod 755 "$trixie_tmp/usr/sbin/policy-rc.d"
    mount_api "$trixie_tmp"
    in_root "$trixie_tmp" apt-get update -qq
    in_root "$trixie_tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${target[@]}" "$@" >/dev/null
    in_root "$trixie_tmp" apt-get clean
    unmount_all
    touch "$trixie_tmp/.complete"
    mv "$trixie_tmp" "$trixie_root"
    trixie_tmp=
}
