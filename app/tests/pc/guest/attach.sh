#!/bin/bash
# attach: lunbox is listed and attached over USB/IP; the kernel enumerates a high-speed device
# with a Bulk-Only mass-storage interface and two LUNs, and says nothing bad about it.
source /pc/lib.sh
set -u

dmesg -C
lb_start

must "usbip list -r 127.0.0.1" usbip list -r 127.0.0.1
echo "$OUT" | indent
expect_in "list shows bus id $BUSID with lunbox's vid:pid" "^ *$BUSID: .*\(1209:0001\)"
expect_in "list shows the mass-storage interface (08/06/50)" "Mass Storage / SCSI / Bulk-Only \(08/06/50\)"

attach 2

udev=$(usb_dev "$LUNBOX_ID") || fail "no USB device $LUNBOX_ID in /sys/bus/usb/devices"
expect_eq "sysfs speed of ${udev##*/}" 480 "$(cat "$udev/speed")"
nif=$(tr -d ' ' <"$udev/bNumInterfaces")
listed=$(usbip list -r 127.0.0.1 | grep -cE '^ +: +[0-9]+ - ')
expect_eq "bNumInterfaces matches the interfaces usbip list showed" "$listed" "$nif"
expect_eq "manufacturer string" lunbox "$(cat "$udev/manufacturer")"
expect_eq "product string" "lunbox USB gadget" "$(cat "$udev/product")"
serial=$(cat "$udev/serial" 2>/dev/null || true)
[[ "$serial" =~ ^[[:print:]]+$ ]] || fail "no printable USB serial number string ('$serial')"
ok "serial string ($serial)"
msif=
for i in "$udev/${udev##*/}":1.*; do
    [ "$(cat "$i/bInterfaceClass")" = 08 ] && msif=$i
    drv=none
    [ -e "$i/driver" ] && drv=$(basename "$(readlink -f "$i/driver")")
    echo "    | interface ${i##*/}: class $(cat "$i/bInterfaceClass")/$(cat "$i/bInterfaceSubClass")/$(cat "$i/bInterfaceProtocol"), driver $drv"
done
[ -n "$msif" ] || fail "no interface of class 08 (mass storage)"
expect_eq "mass-storage interface driver" usb-storage "$(basename "$(readlink -f "$msif/driver")")"

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
OUT=$lsusb_v
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

lsblk -o NAME,SIZE,RO,RM,TYPE,TRAN,VENDOR,MODEL | indent

# The kernel's messages since the start of the scenario: nothing about bad descriptors, errors
# or warnings.
sleep 1
dmesg >"$LB/dmesg.txt"
echo "  dmesg since lunbox started:"
indent <"$LB/dmesg.txt"
bad=$(grep -iE 'invalid|error|warn|fail|bogus|unable|cannot|can.t|not ready|no caching|assuming|unknown|overflow|reset .*speed' "$LB/dmesg.txt" || true)
if [ -n "$bad" ]; then
    fail "dmesg has suspicious lines: $(tr '\n' ';' <<<"$bad")"
fi
ok "dmesg has no warnings or errors about the device"

detach
lb_stop
