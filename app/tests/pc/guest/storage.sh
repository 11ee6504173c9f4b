#!/bin/bash
# storage: three LUNs (the default FAT32 image, an 80 MiB RAM disk, a read-only image) seen
# and used by the kernel: SCSI answers through sg3-utils, the FAT partition, a new FAT file
# system with 64 MiB of random data read back after dropping the caches, fsck, write
# protection.
source /pc/lib.sh
set -u

dmesg -C
mkdir -p /mnt/a /mnt/b /mnt/ro

# A small FAT image with one file, exported read-only as LUN 2.
ro_img=/tmp/pc-ro.img
rm -f "$ro_img"
dd if=/dev/zero of="$ro_img" bs=1M count=8 status=none
must "mkfs.vfat the read-only image" mkfs.vfat -n PCRO "$ro_img"
must "loop-mount the image" mount -o loop -t vfat "$ro_img" /mnt/ro
echo "read-only lunbox LUN" >/mnt/ro/HELLO.TXT
umount /mnt/ro
losetup -D
ro_sha=$(sha "$ro_img")

lb_start --ram-mib 80 --image "$ro_img:ro"
attach 3
d0=/dev/$DEV0 d1=/dev/$DEV1 d2=/dev/$DEV2

say "sizes (lsblk)"
lsblk -b -o NAME,SIZE,RO,RM,TYPE,VENDOR,MODEL "$d0" "$d1" "$d2" | indent
# Every configured LUN, as lsblk lists it: size, read-only, removable, disk on usb.
must "lsblk of the three LUNs" lsblk -b -l -n -d -o NAME,SIZE,RO,RM,TYPE,TRAN "$d0" "$d1" "$d2"
expect_in "lsblk: LUN 0 (the default image), 64 MiB, writable" "^$DEV0 +67108864 +0 +1 +disk +usb$"
expect_in "lsblk: LUN 1 (RAM disk), 80 MiB, writable" "^$DEV1 +83886080 +0 +1 +disk +usb$"
expect_in "lsblk: LUN 2 (--image ...:ro), 8 MiB, read-only" "^$DEV2 +8388608 +1 +1 +disk +usb$"
# Counted from sysfs, whatever lsblk was asked: lunbox's USB device has exactly these disks.
expect_eq "the kernel has exactly the three LUNs" "$(printf '%s\n' "$DEV0" "$DEV1" "$DEV2" | sort | tr '\n' ' ')" \
    "$(lunbox_disks | sort | tr '\n' ' ')"
expect_eq "LUN 0 size" 67108864 "$(blockdev --getsize64 "$d0")"
expect_eq "LUN 1 size" 83886080 "$(blockdev --getsize64 "$d1")"
expect_eq "LUN 2 size" 8388608 "$(blockdev --getsize64 "$d2")"
expect_eq "LUN 0 logical block size" 512 "$(blockdev --getss "$d0")"

say "SCSI commands (sg3-utils) on LUN 0"
must "sg_inq" sg_inq "$d0"
expect_in "INQUIRY: direct-access device" "PQual=0 +PDT=0"
expect_in "INQUIRY: removable (RMB=1)" "RMB=1"
expect_in "INQUIRY: vendor lunbox" "Vendor identification: lunbox"
expect_in "INQUIRY: product" "Product identification: USB Mass Storage"
expect_in "INQUIRY: revision" "Product revision level: [^ ]"
must "sg_vpd -p 0x00 (supported VPD pages)" sg_vpd -p 0x00 "$d0"
echo "$OUT" | indent
expect_in "VPD 0x00 lists 0x80 (unit serial number)" "Unit serial number"
expect_in "VPD 0x00 lists 0x83 (device identification)" "Device identification"
must "sg_vpd -p 0x80 (unit serial number)" sg_vpd -p 0x80 "$d0"
expect_in "unit serial number LUNBOX00" "Unit serial number: LUNBOX00"
must "sg_vpd -p 0x83 (device identification)" sg_vpd -p 0x83 "$d0"
echo "$OUT" | indent
expect_in "designator: T10 vendor identification" "T10 vendor identification"
expect_in "designator: vendor id lunbox" "vendor id: lunbox"
must "sg_readcap (10)" sg_readcap "$d0"
expect_in "READ CAPACITY(10): last LBA 131071" "Last (LBA|logical block address)=131071"
must "sg_readcap -l (16)" sg_readcap -l "$d0"
echo "$OUT" | indent
expect_in "READ CAPACITY(16): last LBA 131071" "Last (LBA|logical block address)=131071"
expect_in "READ CAPACITY(16): 512-byte blocks" "Logical block length=512 bytes"
must "sg_modes (all pages)" sg_modes "$d0"
echo "$OUT" | indent
expect_in "MODE SENSE: WP=0 on a writable LUN" "WP=0"
must "sg_modes -p 0x08 (caching)" sg_modes -p 0x08 "$d0"
expect_in "caching mode page" "[Cc]aching"
must "sg_turs" sg_turs "$d0"
must "sg_sync (SYNCHRONIZE CACHE)" sg_sync "$d0"
must "sg_requests" sg_requests "$d0"
must "sg_luns (REPORT LUNS)" sg_luns "$d0"
echo "$OUT" | indent
expect_in "REPORT LUNS lists 3 LUNs" "Lun list length = 24"

say "SCSI commands on every LUN"
# lun_sg N DEV LAST_LBA WP: INQUIRY, READ CAPACITY (10 and 16), MODE SENSE's write protection,
# TEST UNIT READY and SYNCHRONIZE CACHE answer right on LUN N.
lun_sg() {
    local n=$1 dev=$2 last=$3 wp=$4
    must "LUN $n: sg_inq" sg_inq "$dev"
    expect_in "LUN $n: INQUIRY: direct-access, removable, lunbox" "PQual=0 +PDT=0"
    expect_in "LUN $n: INQUIRY: removable (RMB=1)" "RMB=1"
    expect_in "LUN $n: INQUIRY: vendor lunbox" "Vendor identification: lunbox"
    must "LUN $n: sg_readcap" sg_readcap "$dev"
    expect_in "LUN $n: READ CAPACITY(10): last LBA $last" "Last (LBA|logical block address)=$last\b"
    # -R: a read-only open (by default sg_readcap -l opens read-write, which a write-protected
    # disk refuses).
    must "LUN $n: sg_readcap -l" sg_readcap -l -R "$dev"
    expect_in "LUN $n: READ CAPACITY(16): last LBA $last" "Last (LBA|logical block address)=$last\b"
    expect_in "LUN $n: READ CAPACITY(16): 512-byte blocks" "Logical block length=512 bytes"
    must "LUN $n: sg_modes" sg_modes "$dev"
    expect_in "LUN $n: MODE SENSE: WP=$wp" "WP=$wp"
    must "LUN $n: sg_turs" sg_turs "$dev"
    if [ "$wp" = 0 ]; then
        must "LUN $n: sg_sync" sg_sync "$dev"
    else
        # sg_sync opens read-write, which the kernel refuses on a read-only disk: raw, read-only.
        must "LUN $n: SYNCHRONIZE CACHE(10) (sg_raw)" sg_raw -R "$dev" 35 00 00 00 00 00 00 00 00 00
    fi
    must "LUN $n: sg_vpd -p 0x80" sg_vpd -p 0x80 "$dev"
    expect_in "LUN $n: unit serial number LUNBOX0$n" "Unit serial number: LUNBOX0$n"
}
lun_sg 0 "$d0" 131071 0
lun_sg 1 "$d1" 163839 0
lun_sg 2 "$d2" 16383 1

say "the default FAT32 partition (LUN 0)"
[ -b "${d0}1" ] || fail "no partition ${d0}1 on LUN 0"
must "blkid ${d0}1" blkid "${d0}1"
echo "$OUT" | indent
expect_in "vfat, label LUNBOX" 'LABEL="LUNBOX".*TYPE="vfat"'
must "mount ${d0}1" mount -t vfat "${d0}1" /mnt/a
first=$(head -n 1 /mnt/a/README.TXT | tr -d '\r')
expect_eq "README.TXT first line" "This is a lunbox disk." "$first"
ls -l /mnt/a | indent
must "umount" umount /mnt/a
must "fsck.vfat -n ${d0}1 (lunbox-made image is clean)" fsck.vfat -n "${d0}1"
echo "$OUT" | indent
expect_in "fsck.vfat: a clean summary" "^${d0}1: [0-9]+ files, [0-9]+/[0-9]+ clusters$"

say "a new FAT file system on the RAM disk (LUN 1), 64 MiB of random data"
must "mkfs.vfat -I $d1" mkfs.vfat -I -n PCRAM "$d1"
must "mount $d1" mount -t vfat "$d1" /mnt/b
dd if=/dev/urandom of=/tmp/rand.bin bs=1M count=64 status=none
want=$(sha /tmp/rand.bin)
t0=$(now)
must "copy 64 MiB to the RAM LUN" cp /tmp/rand.bin /mnt/b/rand.bin
must "sync" sync
t1=$(now)
ok "copied and synced in $(elapsed "$t0" "$t1") s"
must "umount" umount /mnt/b
echo 3 >/proc/sys/vm/drop_caches
must "fsck.vfat -n $d1 after unmount" fsck.vfat -n "$d1"
echo "$OUT" | indent
expect_in "fsck.vfat: a clean summary" "^$d1: [0-9]+ files, [0-9]+/[0-9]+ clusters$"
must "mount $d1 again" mount -t vfat "$d1" /mnt/b
t0=$(now)
got=$(sha /mnt/b/rand.bin)
ok "read back in $(elapsed "$t0" "$(now)") s"
expect_eq "sha256 of the file read back" "$want" "$got"
must "umount" umount /mnt/b
rm -f /tmp/rand.bin

say "raw O_DIRECT I/O at the end of the RAM LUN (last 1 MiB)"
dd if=/dev/urandom of=/tmp/tail.bin bs=1M count=1 status=none
must "dd write the last MiB" dd if=/tmp/tail.bin of="$d1" bs=1M seek=79 oflag=direct conv=notrunc status=none
must "dd read the last MiB" dd if="$d1" of=/tmp/tail.back bs=1M skip=79 iflag=direct status=none
must "last MiB matches" cmp /tmp/tail.bin /tmp/tail.back
sg_raw -r 512 "$d1" 28 00 00 02 80 00 00 00 01 00 >/tmp/sgraw.out 2>&1 && fail "READ(10) at LBA 163840 (one past the end) succeeded"
OUT=$(cat /tmp/sgraw.out)
expect_in "READ(10) past the end: LBA out of range" "[Ll]ogical block address out of range"

say "VERIFY(10) with BYTCHK=1 (compare with the host's data) on LUN 1"
dd if=/dev/urandom of=/tmp/v2 bs=512 count=2 status=none
must "write 2 blocks at LBA 0" dd if=/tmp/v2 of="$d1" bs=512 count=2 oflag=direct conv=notrunc status=none
must "VERIFY matching data" sg_raw -s 1024 -i /tmp/v2 "$d1" 2f 02 00 00 00 00 00 00 02 00
{ head -c 512 /tmp/v2; head -c 512 /dev/zero; } >/tmp/v2bad
sg_raw -s 1024 -i /tmp/v2bad "$d1" 2f 02 00 00 00 00 00 00 02 00 >/tmp/sgraw.out 2>&1 && fail "VERIFY of mismatching data passed"
OUT=$(cat /tmp/sgraw.out)
expect_in "VERIFY of mismatching data: MISCOMPARE" "Miscompare during verify"
note "MISCOMPARE information field: $(grep -o 'Info fld=[^ ]* \[[0-9]*\]' /tmp/sgraw.out) (block 1 of the 2 differs)"

say "the read-only LUN (LUN 2, --image $ro_img:ro)"
expect_eq "/sys/block/$DEV2/ro" 1 "$(cat "/sys/block/$DEV2/ro")"
expect_eq "blockdev --getro $d2" 1 "$(blockdev --getro "$d2")"
expect_eq "/sys/block/$DEV0/ro (writable LUN)" 0 "$(cat "/sys/block/$DEV0/ro")"
must "sg_modes on LUN 2" sg_modes "$d2"
expect_in "MODE SENSE: WP=1" "WP=1"
must_fail "dd write to the read-only LUN fails" dd if=/dev/zero of="$d2" bs=4096 count=1 oflag=direct conv=notrunc status=none
# Past the kernel's own check: a raw WRITE(10) must get DATA PROTECT / WRITE PROTECTED.
head -c 512 /dev/zero >/tmp/zero512
sg_raw -R -s 512 -i /tmp/zero512 "$d2" 2a 00 00 00 00 10 00 00 01 00 >/tmp/sgraw.out 2>&1 && {
    cat /tmp/sgraw.out | indent
    fail "raw WRITE(10) to the read-only LUN succeeded"
}
OUT=$(cat /tmp/sgraw.out)
echo "$OUT" | indent
expect_in "raw WRITE(10): Data protect / write protected" "[Ww]rite protected"
must "mount the read-only LUN" mount -t vfat "$d2" /mnt/ro
opts=$(awk '$2 == "/mnt/ro" {print $4}' /proc/mounts)
case ",$opts," in *,ro,*) ok "mounted ro ($opts)" ;; *) fail "LUN 2 mounted read-write ($opts)" ;; esac
expect_eq "HELLO.TXT" "read-only lunbox LUN" "$(cat /mnt/ro/HELLO.TXT)"
(echo x >/mnt/ro/NEW.TXT) 2>/dev/null && fail "created a file on the read-only LUN"
ok "creating a file on the read-only LUN fails"
must "umount" umount /mnt/ro
detach
lb_stop
expect_eq "read-only image unchanged (sha256)" "$ro_sha" "$(sha "$ro_img")"

dmesg >"$LB/dmesg.txt"
bad=$(grep -iE 'invalid|bogus|reset .*speed|device descriptor|unable|protocol error' "$LB/dmesg.txt" || true)
if [ -n "$bad" ]; then
    indent <"$LB/dmesg.txt"
    fail "dmesg: $(tr '\n' ';' <<<"$bad")"
fi
ok "dmesg: no resets or descriptor errors"
echo "  dmesg lines with 'error' or 'warn' (expected ones: reading past the end, write protect):"
grep -iE 'error|warn|critical' "$LB/dmesg.txt" | indent || true
