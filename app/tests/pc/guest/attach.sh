#!/bin/bash
# attach: lunbox is listed and attached over USB/IP; the kernel enumerates a high-speed composite
# device (a Bulk-Only mass-storage interface with two LUNs, a CDC-ACM serial port, a DFU
# interface with one alternate setting per target) and says nothing bad about it.
source /pc/lib.sh
set -u

dmesg -C
lb_start

must "usbip list -r 127.0.0.1" usbip list -r 127.0.0.1
echo "$OUT" | indent
expect_in "list shows bus id $BUSID with lunbox's vid:pid" "^ *$BUSID: .*\(1209:0001\)"
expect_in "list shows the mass-storage interface (08/06/50)" "Mass Storage / SCSI / Bulk-Only \(08/06/50\)"
expect_in "list shows the CDC-ACM control interface (02/02/..)" "\(02/02/[0-9a-f]{2}\)"
expect_in "list shows the CDC data interface (0a/00/00)" "\(0a/00/00\)"
expect_in "list shows the DFU interface (fe/01/02: DFU mode)" "\(fe/01/02\)"

attach 2

udev=$(usb_dev "$LUNBOX_ID") || fail "no USB device $LUNBOX_ID in /sys/bus/usb/devices"
expect_eq "sysfs speed of ${udev##*/}" 480 "$(cat "$udev/speed")"
nif=$(tr -d ' ' <"$udev/bNumInterfaces")
listed=$(usbip list -r 127.0.0.1 | grep -cE '^ +: +[0-9]+ - ')
expect_eq "bNumInterfaces matches the interfaces usbip list showed" "$listed" "$nif"
expect_eq "bNumInterfaces: mass storage, CDC-ACM control and data, DFU" 4 "$nif"
expect_eq "manufacturer string" lunbox "$(cat "$udev/manufacturer")"
expect_eq "product string" "lunbox USB gadget" "$(cat "$udev/product")"
serial=$(cat "$udev/serial" 2>/dev/null || true)
[[ "$serial" =~ ^[[:print:]]+$ ]] || fail "no printable USB serial number string ('$serial')"
ok "serial string ($serial)"
# Each interface as CLASS/SUBCLASS/PROTOCOL=DRIVER, sorted.
ifs=()
for i in "$udev/${udev##*/}":1.*; do
    drv=none
    [ -e "$i/driver" ] && drv=$(basename "$(readlink -f "$i/driver")")
    ifs+=("$(cat "$i/bInterfaceClass")/$(cat "$i/bInterfaceSubClass")/$(cat "$i/bInterfaceProtocol")=$drv")
    echo "    | interface ${i##*/}: ${ifs[-1]}"
done
OUT=$(printf '%s\n' "${ifs[@]}")
expect_in "mass storage (08/06/50) bound to usb-storage" "^08/06/50=usb-storage$"
expect_in "CDC-ACM control interface (02/02) bound to cdc_acm" "^02/02/[0-9a-f]{2}=cdc_acm$"
expect_in "CDC data interface (0a/00/00) bound to cdc_acm" "^0a/00/00=cdc_acm$"
expect_in "DFU interface in DFU mode (fe/01/02), no kernel driver (dfu-util's)" "^fe/01/02=none$"
tty=$(ls "$udev/${udev##*/}":1.*/tty 2>/dev/null | head -n 1)
[ -n "$tty" ] || fail "cdc_acm made no tty for lunbox's serial port"
ok "serial port /dev/$tty"

must "usbip port" usbip port
expect_in "usbip port: port in use at high speed" "<Port in Use> at High Speed\(480Mbps\)"

must "lsusb -v -d $LUNBOX_ID" lsusb -v -d "$LUNBOX_ID"
[ "${PC_VERBOSE:-0}" = 1 ] && echo "$OUT" | indent
lsusb_v=$OUT
expect_in "bcdUSB 2.x" "bcdUSB +2\.[0-9]+"
expect_in "bMaxPacketSize0 64" "bMaxPacketSize0 +64"
OUT=$(grep -A2 -E "bInterfaceClass +8( |$)" <<<"$lsusb_v")
expect_in "mass-storage interface: class 8" "bInterfaceClass +8"
expect_in "mass-storage interface: subclass 6 (SCSI transparent)" "bInterfaceSubClass +6( |$)"
expect_in "mass-storage interface: protocol 80 (Bulk-Only)" "bInterfaceProtocol +80( |$)"
OUT=$(grep -A2 -E "bInterfaceClass +2( |$)" <<<"$lsusb_v")
expect_in "ACM control interface: class 2 (Communications)" "bInterfaceClass +2"
expect_in "ACM control interface: subclass 2 (Abstract Control Model)" "bInterfaceSubClass +2( |$)"
OUT=$lsusb_v
expect_in "interface association descriptor for the serial port's two interfaces" "Interface Association:"
expect_in "CDC header functional descriptor" "CDC Header:"
expect_in "CDC call management functional descriptor" "CDC Call Management:"
expect_in "CDC ACM functional descriptor" "CDC ACM:"
expect_in "CDC union functional descriptor" "CDC Union:"
# The ACM notification endpoint: at high speed bInterval is 2^(n-1) microframes, n in 1..16
# (USB 2.0 9.6.6); usbd-serial's 255 would be invalid.
ival=$(grep -A6 "Transfer Type *Interrupt" <<<"$lsusb_v" | sed -n 's/^ *bInterval *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$ival" ] && [ "$ival" -ge 1 ] && [ "$ival" -le 16 ] || fail "ACM interrupt endpoint bInterval '$ival' is not 1..16"
ok "ACM interrupt endpoint bInterval $ival (valid at high speed)"
OUT=$(grep -A2 -E "bInterfaceClass +254( |$)" <<<"$lsusb_v")
expect_in "DFU interface: class 254 (Application Specific)" "bInterfaceClass +254"
expect_in "DFU interface: subclass 1 (Device Firmware Update)" "bInterfaceSubClass +1( |$)"
expect_in "DFU interface: protocol 2 (DFU mode)" "bInterfaceProtocol +2( |$)"
# One alternate setting per DFU target (default targets: firmware, ram0), each named.
alts=$(awk '$1 == "bAlternateSetting" { alt = $2 } $1 == "bInterfaceClass" && $2 == 254 { printf "%s ", alt }' <<<"$lsusb_v")
expect_eq "DFU alternate settings (one per target: firmware, ram0)" "0 1 " "$alts"
OUT=$lsusb_v
expect_in "DFU functional descriptor" "Device Firmware Upgrade Interface Descriptor:"
expect_in "DFU version 1.1" "bcdDFUVersion +1\.10"
expect_in "DFU alt 0 named firmware" "iInterface +[0-9]+ firmware$"
expect_in "DFU alt 1 named ram0" "iInterface +[0-9]+ ram0$"
expect_in "bulk IN endpoint" "bEndpointAddress +0x8[0-9a-f] +EP [0-9]+ IN"
expect_in "bulk OUT endpoint" "bEndpointAddress +0x0[0-9a-f] +EP [0-9]+ OUT"
# Every bulk endpoint of a high-speed device has wMaxPacketSize 512 (USB 2.0 9.6.6).
bulk=$(grep -c "Transfer Type *Bulk" <<<"$OUT")
mps=$(grep -A3 "Transfer Type *Bulk" <<<"$OUT" | grep -c "wMaxPacketSize *0x0200")
[ "$bulk" -ge 2 ] || fail "expected at least 2 bulk endpoints, lsusb shows $bulk"
expect_eq "bulk endpoints with wMaxPacketSize 512 (of $bulk)" "$bulk" "$mps"
expect_in "device qualifier descriptor present (high-speed capable)" "Device Qualifier \(for other device speed\)"
if grep -qiE "can't get|cannot get|unable|error" <<<"$OUT"; then
    fail "lsusb -v complained (lines: $(grep -iE "can't get|cannot get|unable|error" <<<"$OUT" | tr '\n' ';'))"
fi
ok "lsusb -v printed no complaints"

must "lsusb -t" lsusb -t
OUT=$(grep -E 'Dev [0-9]+, If' <<<"$OUT")
echo "$OUT" | indent
expect_in "lsusb -t: usb-storage bound at 480M" "Driver=usb-storage, 480M"
expect_in "lsusb -t: cdc_acm bound at 480M" "Driver=cdc_acm, 480M"

must "lsblk" lsblk -o NAME,SIZE,RO,RM,TYPE,TRAN,VENDOR,MODEL
echo "$OUT" | indent
# Both LUNs, as lsblk sees them: LUN 0 the 64 MiB image with its FAT partition, LUN 1 the
# 16 MiB RAM disk; removable, writable, on usb.
must "lsblk of both LUNs" lsblk -b -l -n -o NAME,SIZE,RO,RM,TYPE,TRAN "/dev/$DEV0" "/dev/$DEV1"
echo "$OUT" | indent
expect_in "lsblk: LUN 0, 64 MiB, writable, removable disk on usb" "^$DEV0 +67108864 +0 +1 +disk +usb$"
expect_in "lsblk: LUN 0's partition" "^${DEV0}1 +[0-9]+ +0 +1 +part *$"
expect_in "lsblk: LUN 1, 16 MiB, writable, removable disk on usb" "^$DEV1 +16777216 +0 +1 +disk +usb$"

# The kernel's messages since the start of the scenario: nothing about bad descriptors, errors
# or warnings.
dmesg_clean "attach"

detach
lb_stop
