//! The device qualifier: usb-device 0.3 does not answer GET_DESCRIPTOR(DEVICE_QUALIFIER), which
//! a high-speed capable device must. This tiny class answers it.

use usb_device::class_prelude::*;
use usb_device::control::{Recipient, Request, RequestType};

/// Descriptor type: device qualifier.
const DEVICE_QUALIFIER: u8 = 6;

/// Answers GET_DESCRIPTOR(DEVICE_QUALIFIER) with the device's class triple and EP0 size;
/// put it first in the class list.
pub struct DeviceQualifier {
    descriptor: [u8; 10],
}

impl DeviceQualifier {
    /// A qualifier for a USB 2.0 device of class `class` (class, subclass, protocol) with
    /// endpoint 0 of `max_packet_0` bytes and one configuration.
    pub fn new(class: (u8, u8, u8), max_packet_0: u8) -> Self {
        DeviceQualifier {
            descriptor: [
                10,
                DEVICE_QUALIFIER,
                0x00,
                0x02,
                class.0,
                class.1,
                class.2,
                max_packet_0,
                1,
                0,
            ],
        }
    }
}

impl<B: UsbBus> UsbClass<B> for DeviceQualifier {
    fn control_in(&mut self, xfer: ControlIn<'_, '_, '_, B>) {
        let req = *xfer.request();
        if req.request_type == RequestType::Standard
            && req.recipient == Recipient::Device
            && req.request == Request::GET_DESCRIPTOR
            && (req.value >> 8) as u8 == DEVICE_QUALIFIER
        {
            let _ = xfer.accept_with(&self.descriptor);
        }
    }
}
