//! Validation against the rules and a device registry.

use lunbox_config::{
    Config, Entry, FIRMWARE, Flag, List, MAX_DFU_TARGETS, MAX_LUNS, ValidationError, parse,
    validate,
};

/// The sandbox-like registry: a disk with partitions, RAM disks and images.
fn known(name: &str) -> bool {
    matches!(
        name,
        "sd0" | "sd0.0" | "sd0.1" | "sd0.2" | "sd0.rootfs" | "ram0" | "ram1" | "img0"
    )
}

/// The messages for `config`, which must not validate.
fn messages(config: &Config) -> Vec<String> {
    match validate(config, known) {
        Ok(()) => panic!("valid: {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn text_messages(text: &str) -> Vec<String> {
    messages(&parse(text).unwrap())
}

#[test]
fn valid_configurations() {
    for text in [
        "",
        "ums=sd0.1(data),ram0(scratch)ro\ndfu=sd0.2(rootfs)s,firmware(fw)r",
        "ums=sd0()ro,sd0.1()ro,sd0.rootfs()rofixed",
        "ums=sd0.0,sd0.1,sd0.2",
        "dfu=sd0,sd0.1,sd0(whole)r,firmware",
        "serial=\"0123456789AB\"",
    ] {
        let config = parse(text).unwrap();
        assert_eq!(validate(&config, known), Ok(()), "{text}");
    }
    let sixteen = Config {
        ums: (0..MAX_LUNS)
            .map(|i| {
                Entry::new("ram0")
                    .named(format!("l{i}"))
                    .flag(Flag::ReadOnly)
            })
            .collect(),
        ..Config::default()
    };
    assert_eq!(validate(&sixteen, known), Ok(()));
    let long = Config {
        product: "\u{e9}".repeat(126),
        manufacturer: "m".repeat(126),
        serial: Some("s".repeat(126)),
        ..Config::default()
    };
    assert_eq!(validate(&long, known), Ok(()));
}

#[test]
fn unknown_devices() {
    assert_eq!(
        text_messages("ums=sd0.1,sd0.9(data)\ndfu=sd1,firmware"),
        [
            "ums LUN 1 (sd0.9): no device 'sd0.9' (devinfo lists the devices)",
            "dfu alt 0 (sd1): no device 'sd1' (devinfo lists the devices)",
        ]
    );
    assert_eq!(
        text_messages("ums=firmware"),
        [
            "ums LUN 0 (firmware): no device 'firmware' (devinfo lists the devices); did you mean \
          a dfu entry (firmware is a DFU target)?"
        ]
    );
    // Flags stuck to the device name.
    assert_eq!(
        text_messages("ums=ram0ro,sd0.1rofixed\ndfu=firmwaresr"),
        [
            "ums LUN 0 (ram0ro): no device 'ram0ro' (devinfo lists the devices); did you mean \
             ram0()ro?",
            "ums LUN 1 (sd0.1rofixed): no device 'sd0.1rofixed' (devinfo lists the devices); \
             did you mean sd0.1()rofixed?",
            "dfu alt 0 (firmwaresr): no device 'firmwaresr' (devinfo lists the devices); did \
             you mean firmware()sr?",
        ]
    );
    let e = validate(&parse("ums=img9").unwrap(), known).unwrap_err();
    assert_eq!(
        e,
        [ValidationError::UnknownDevice {
            list: List::Ums,
            index: 0,
            device: "img9".into(),
            hint: None,
        }]
    );
    // `firmware` is always a DFU target, whatever the registry says.
    assert_eq!(validate(&parse("dfu=firmware").unwrap(), |_| false), Ok(()));
}

#[test]
fn bad_device_names() {
    let config = Config {
        ums: [
            "",
            "Sd0",
            "0sd",
            "sd0.",
            "sd0.a.b",
            "sd0(x",
            &"a".repeat(33),
        ]
        .into_iter()
        .map(Entry::new)
        .collect(),
        dfu: vec![Entry::new(format!("sd0.{}", "p".repeat(37)))],
        ..Config::default()
    };
    assert_eq!(
        messages(&config),
        [
            "ums LUN 0 (): '' is not a device name: a disk name has 1 to 32 characters",
            "ums LUN 1 (Sd0): 'Sd0' is not a device name: a disk name starts with a lower-case \
             letter",
            "ums LUN 2 (0sd): '0sd' is not a device name: a disk name starts with a lower-case \
             letter",
            "ums LUN 3 (sd0.): 'sd0.' is not a device name: a partition (after the '.') has 1 \
             to 36 characters",
            "ums LUN 4 (sd0.a.b): 'sd0.a.b' is not a device name: a partition (after the '.') \
             has only A-Z, a-z, 0-9, '_' and '-'",
            "ums LUN 5 (sd0(x): 'sd0(x' is not a device name: a disk name has only a-z, 0-9, \
             '_' and '-'",
            "ums LUN 6 (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa): 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' \
             is not a device name: a disk name has 1 to 32 characters",
            "dfu alt 0 (sd0.ppppppppppppppppppppppppppppppppppppp): \
             'sd0.ppppppppppppppppppppppppppppppppppppp' is not a device name: a partition \
             (after the '.') has 1 to 36 characters",
        ]
    );
}

#[test]
fn names() {
    assert_eq!(
        text_messages(
            "ums=sd0.1(data),ram0(data)ro,img0,sd0.2(img0)\ndfu=sd0.1(data),sd0.2(x),firmware(x)"
        ),
        [
            "ums: LUNs 0 and 1 are both called 'data': give one of them another (NAME)",
            "ums: LUNs 2 and 3 are both called 'img0': give one of them another (NAME)",
            "dfu: alts 1 and 2 are both called 'x': give one of them another (NAME)",
        ]
    );
    assert_eq!(
        text_messages(&format!("dfu=sd0(0),sd0.1({})", "n".repeat(33))),
        [
            "dfu alt 0: bad name '0': a name of only digits would read as a number",
            "dfu alt 1: bad name 'nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn': use at most 32 characters",
        ]
    );
    let config = Config {
        ums: vec![
            Entry::new("sd0.1").named(""),
            Entry::new("sd0.2").named("a b"),
        ],
        ..Config::default()
    };
    assert_eq!(
        messages(&config),
        [
            "ums LUN 0: empty name: give a name or leave the name out",
            "ums LUN 1: bad name 'a b': use only A-Z, a-z, 0-9, '_', '-' and '.'",
        ]
    );
}

#[test]
fn too_many_luns() {
    let config = Config {
        ums: (0..=MAX_LUNS)
            .map(|i| {
                Entry::new("ram0")
                    .named(format!("l{i}"))
                    .flag(Flag::ReadOnly)
            })
            .collect(),
        ..Config::default()
    };
    assert_eq!(messages(&config), ["ums: 17 LUNs, at most 16: remove 1"]);
    assert_eq!(
        validate(&config, known),
        Err(vec![ValidationError::TooManyLuns { count: 17 }])
    );
}

#[test]
fn at_most_sixteen_dfu_targets() {
    let targets = |n: usize| Config {
        dfu: (0..n)
            .map(|i| Entry::new("ram0").named(format!("t{i}")))
            .collect(),
        ..Config::default()
    };
    assert_eq!(validate(&targets(MAX_DFU_TARGETS), known), Ok(()));
    let config = targets(MAX_DFU_TARGETS + 1);
    assert_eq!(messages(&config), ["dfu: 17 targets, at most 16: remove 1"]);
    assert_eq!(
        validate(&config, known),
        Err(vec![ValidationError::TooManyTargets { count: 17 }])
    );
}

#[test]
fn flags_of_the_other_list() {
    let config = Config {
        ums: vec![Entry::new("sd0.1").flag(Flag::Safe).flag(Flag::ReadOnly)],
        dfu: vec![
            Entry::new(FIRMWARE)
                .flag(Flag::ReadOnly)
                .flag(Flag::Fixed)
                .flag(Flag::Readback),
        ],
        ..Config::default()
    };
    assert_eq!(
        messages(&config),
        [
            "ums LUN 0: flag 's' is not a ums flag (use ro, fixed)",
            "dfu alt 0: flag 'ro' is not a dfu flag (use s, r)",
            "dfu alt 0: flag 'fixed' is not a dfu flag (use s, r)",
        ]
    );
}

#[test]
fn overlapping_luns() {
    assert_eq!(
        text_messages("ums=sd0.1(a),sd0.1(b)ro,sd0(c)ro,sd0.2(d)ro,ram0(e),ram0(f)"),
        [
            "ums: LUNs 0 and 1 both export sd0.1: export it once, or make both read-only (ro)",
            "ums: LUNs 0 (sd0.1) and 2 (sd0) overlap: export it once, or make both read-only \
             (ro)",
            "ums: LUNs 4 and 5 both export ram0: export it once, or make both read-only (ro)",
        ]
    );
}

#[test]
fn strings() {
    let config = Config {
        manufacturer: "m".repeat(127),
        product: "\u{1F600}".repeat(64),
        serial: Some(String::new()),
        ..Config::default()
    };
    assert_eq!(
        messages(&config),
        [
            "manufacturer: 127 UTF-16 units, at most 126 fit a USB string",
            "product: 128 UTF-16 units, at most 126 fit a USB string",
            "serial: empty: leave it out to use the board's serial number",
        ]
    );
}

/// A configuration that validates prints text that parses back to it.
#[test]
fn valid_configurations_round_trip() {
    let text = "ums=sd0.1(data),ram0(scratch)rofixed,sd0.rootfs()fixed\n\
                dfu=sd0.2(rootfs)s,firmware(fw)sr\nserial=\"x\\\"y\"";
    let config = parse(text).unwrap();
    validate(&config, known).unwrap();
    assert_eq!(parse(&config.to_text()).unwrap(), config);
}
