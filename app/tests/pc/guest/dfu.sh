#!/bin/bash
# dfu: dfu-util lists one alternate setting per DFU target (set from the console: "firmware",
# "part" = the FAT partition img0.0 without the r flag, "ram0" with it), downloads an image to
# the partition target and to the RAM disk target (the bytes land there: checked through the
# mass-storage LUNs), uploads where allowed (ram0: r; firmware: the running slot, empty for the
# built-in program), is refused an upload where not (part) and an unsigned firmware image.
source /pc/lib.sh
set -u

dmesg -C
# A small RAM disk: a DFU upload moves 4 KiB per control transfer, each a USB/IP round trip.
lb_start --ram-mib 2
lb_cmd 'usbgadget -S img0,ram0 -D firmware(firmware)r,img0.0(part),ram0(ram0)r -a'
attach 2
d0=/dev/$DEV0
d=/dev/$DEV1

must "dfu-util -l" dfu-util -l
echo "$OUT" | grep -i 'found dfu' | indent
expect_in "alt 0 is the firmware target" 'alt=0, name="firmware"'
expect_in "alt 1 is the partition target" 'alt=1, name="part"'
expect_in "alt 2 is the ram0 target" 'alt=2, name="ram0"'
# Exactly one alternate setting per target: three DFU-mode entries, alts 0, 1, 2 once each.
alts=$(grep -i 'found dfu' <<<"$OUT" | sed -n 's/.*alt=\([0-9]*\),.*/\1/p' | sort -n | tr '\n' ' ')
expect_eq "dfu-util lists alt settings 0 1 2, each once (one per target)" "0 1 2 " "$alts"

head -c 1048576 /dev/urandom >/tmp/img.bin
must "dfu-util -a ram0 -D (1 MiB)" dfu-util -a ram0 -D /tmp/img.bin
must "read the RAM LUN back through mass storage" dd if="$d" of=/tmp/lun.bin bs=1M count=1 iflag=direct status=none
expect_eq "sha256 of the downloaded image on the LUN" "$(sha /tmp/img.bin)" "$(sha /tmp/lun.bin)"

must "dfu-util -a part -D (1 MiB to the partition img0.0)" dfu-util -a part -D /tmp/img.bin
wait_for 10 "${d0}1" test -b "${d0}1"
must "read the partition back through mass storage" dd if="${d0}1" of=/tmp/part.bin bs=1M count=1 iflag=direct status=none
expect_eq "sha256 of the image at the start of the partition" "$(sha /tmp/img.bin)" "$(sha /tmp/part.bin)"
rm -f /tmp/part-up.bin
must_fail "dfu-util -a part -U is refused (no r flag)" dfu-util -a part -U /tmp/part-up.bin
expect_in "the UPLOAD request is stalled" "Error during upload \(LIBUSB_ERROR_PIPE\)"

rm -f /tmp/up.bin
must "dfu-util -a ram0 -U (upload allowed: r)" dfu-util -a ram0 -U /tmp/up.bin
# The refusal's status stayed until this dfu-util cleared it (CLRSTATUS).
expect_in "the next dfu-util finds dfuERROR with errTARGET (the refused upload's status)" \
    "DFU state\(10\) = dfuERROR, status\(1\)"
expect_eq "uploaded size is the whole RAM disk" 2097152 "$(stat -c %s /tmp/up.bin)"
head -c 1048576 /tmp/up.bin >/tmp/up1.bin
expect_eq "sha256 of the upload's first MiB" "$(sha /tmp/img.bin)" "$(sha /tmp/up1.bin)"

rm -f /tmp/fw-up.bin
must "dfu-util -a firmware -U (the running slot's image)" dfu-util -a firmware -U /tmp/fw-up.bin
expect_eq "the built-in program uploads as nothing" 0 "$(stat -c %s /tmp/fw-up.bin)"
must_fail "dfu-util -a firmware -D of unsigned bytes is refused" dfu-util -a firmware -D /tmp/img.bin
expect_in "the download ends in dfuERROR with errFILE (not a signed lunbox image)" \
    "DFU state\(10\) = dfuERROR, status\(2\)"
lb_cmd fw status
expect_in "nothing pending after the refused image" "pending: (none|-|no)"
dmesg_clean "dfu"
lb_stop
