#!/usr/bin/env bash
# Builds the PC harness's cached guest: OUT/vmlinuz (Debian's linux-image-amd64 kernel) and
# OUT/base.cpio (an uncompressed newc initramfs: busybox-static for the base, real Debian
# binaries with the libraries ldd lists, the kernel modules the scenarios load, gconv for
# mkfs.fat, usb.ids for usbip). The per-run overlay (lunbox, guest scripts, /init) is a second
# cpio appended by `run`. Called by `run` only when the cache key changes.
# Usage: mkinitramfs.sh KVER OUT
set -euo pipefail

kver=$1
out=$2
root=$(mktemp -d "${TMPDIR:-/tmp}/lunbox-pc-root.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Merged /usr, as on the host, so host paths can be copied verbatim.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,tmp,run,mnt,etc,root,var}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"   # usbip keeps its attach records in /var/run/vhci_hcd

# copy_file HOSTPATH: the file (symlinks resolved) at the same path in the guest.
copy_file() {
    local src=$1
    mkdir -p "$root$(dirname "$src")"
    cp -L "$src" "$root$src"
}

# copy_bin HOSTPATH...: binaries and the shared libraries they need.
declare -A seen_lib=()
copy_bin() {
    local bin lib
    for bin in "$@"; do
        copy_file "$bin"
        # `ldd` on a script or static binary says "not a dynamic executable": nothing to add.
        while read -r lib; do
            [ -n "$lib" ] || continue
            [ -n "${seen_lib[$lib]:-}" ] && continue
            seen_lib[$lib]=1
            copy_file "$lib"
        done < <(ldd "$bin" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
    done
}

# Real tools (busybox's versions differ or are missing).
copy_bin /usr/bin/bash /usr/bin/dd /usr/bin/sha256sum /usr/bin/timeout /usr/bin/head \
    /usr/bin/stat /usr/bin/cmp /usr/bin/sort /usr/bin/tail /usr/bin/tr /usr/bin/cut /usr/bin/seq /usr/bin/stty /usr/bin/date /usr/bin/sleep \
    /usr/bin/lsblk /usr/sbin/blkid /usr/sbin/blockdev /usr/sbin/sfdisk /usr/bin/dmesg \
    /usr/bin/mount /usr/bin/umount /usr/sbin/losetup \
    /usr/sbin/usbip /usr/sbin/usbipd /usr/bin/lsusb /usr/bin/usb-devices /usr/bin/usbreset \
    /usr/bin/dfu-util /usr/bin/socat \
    /usr/sbin/mkfs.fat /usr/sbin/fsck.fat \
    /usr/bin/kmod /usr/bin/grep /usr/bin/sed /usr/bin/awk
for sg in /usr/bin/sg_*; do copy_bin "$sg"; done
for name in mkfs.vfat mkdosfs; do ln -sf mkfs.fat "$root/usr/sbin/$name"; done
for name in fsck.vfat dosfsck; do ln -sf fsck.fat "$root/usr/sbin/$name"; done
for name in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf ../bin/kmod "$root/usr/sbin/$name"; done
ln -sf bash "$root/usr/bin/sh"
# GNU awk may be an alternatives symlink to mawk: copy_file resolved it already.

# busybox-static for everything else; real binaries above win (no symlink over a file).
cp /usr/bin/busybox "$root/usr/bin/busybox"
while read -r applet; do
    applet=/${applet#/}
    case "$applet" in
        /bin/* | /sbin/* | /usr/bin/* | /usr/sbin/*) ;;
        *) continue ;;
    esac
    # Map /bin and /sbin into /usr (merged /usr).
    case "$applet" in /bin/* | /sbin/*) applet=/usr$applet ;; esac
    if [ ! -e "$root$applet" ] && [ ! -L "$root$applet" ]; then
        ln -s /usr/bin/busybox "$root$applet"
    fi
done < <(/usr/bin/busybox --list-full)

# mkfs.fat converts the volume label through iconv (IBM437/IBM850).
gconv=/usr/lib/x86_64-linux-gnu/gconv
mkdir -p "$root$gconv"
cp -r "$gconv/gconv-modules" "$gconv/gconv-modules.d" "$gconv/IBM437.so" "$gconv/IBM850.so" "$root$gconv/"
# usbip prints names from usb.ids ("unknown vendor" without it).
copy_file /usr/share/hwdata/usb.ids
mkdir -p "$root/usr/share/misc"
ln -sf ../hwdata/usb.ids "$root/usr/share/misc/usb.ids"

# Kernel modules and their dependencies. No udev in the guest: /init loads them.
modules=(usbcore usb-common scsi_mod sd_mod sg usb-storage uas usbip-core vhci-hcd usbip-host
    cdc-acm vfat fat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 loop configfs libcomposite
    dummy_hcd usb_f_mass_storage udc-core xhci-pci xhci-hcd)
mdir=/lib/modules/$kver
for m in "${modules[@]}"; do
    modprobe -S "$kver" --show-depends "$m" | while read -r kind path _; do
        [ "$kind" = insmod ] && copy_file "$path"
        true
    done
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "$mdir/$f" ] && copy_file "$mdir/$f"
done
depmod -b "$root" "$kver"

# Files a few tools look for.
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
: >"$root/etc/fstab"
ln -sf /proc/mounts "$root/etc/mtab"
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

mkdir -p "$out"
cp -L "/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --quiet -o -0 -H newc -R 0:0) >"$out/base.cpio.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/base.cpio.tmp" "$out/base.cpio"
echo "pc: built $out/base.cpio ($(du -h "$out/base.cpio" | cut -f1)) for kernel $kver"
