//! Time windows resolve their zone from the IANA database compiled into the binary, never
//! from the host's tzdata: Europe/Berlin is UTC+1 in winter and UTC+2 in summer on every
//! host, even one whose `TZDIR` holds a wrong Europe/Berlin.

use charter_core::TimeWindow;
use jiff::Timestamp;

use crate::fixtures::window;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A weekday window, 09:00–17:00 Berlin time, checked on both sides of both edges in
/// winter (CET, UTC+1) and summer (CEST, UTC+2), and around the spring change.
fn assert_berlin_office_hours(w: &TimeWindow) {
    for (instant, inside) in [
        // Monday 12 January 2026, CET: 09:00 local is 08:00Z, 17:00 local is 16:00Z.
        ("2026-01-12T07:59:00Z", false),
        ("2026-01-12T08:00:00Z", true),
        ("2026-01-12T15:59:00Z", true),
        ("2026-01-12T16:00:00Z", false),
        // Monday 13 July 2026, CEST: 09:00 local is 07:00Z, 17:00 local is 15:00Z.
        ("2026-07-13T06:59:00Z", false),
        ("2026-07-13T07:00:00Z", true),
        ("2026-07-13T14:59:00Z", true),
        ("2026-07-13T15:00:00Z", false),
        // Clocks go forward on Sunday 29 March 2026: Friday before is CET, Monday after CEST.
        ("2026-03-27T07:30:00Z", false),
        ("2026-03-27T08:00:00Z", true),
        ("2026-03-30T07:00:00Z", true),
        ("2026-03-30T15:30:00Z", false),
        // And back on Sunday 25 October 2026.
        ("2026-10-23T07:00:00Z", true),
        ("2026-10-26T07:30:00Z", false),
        ("2026-10-26T15:30:00Z", true),
        // Saturday: not a window day, whatever the hour.
        ("2026-07-11T10:00:00Z", false),
    ] {
        assert_eq!(w.contains(at(instant)), inside, "{instant}");
    }
}

fn office_hours() -> TimeWindow {
    window(
        &["mon", "tue", "wed", "thu", "fri"],
        "09:00",
        "17:00",
        "Europe/Berlin",
    )
}

#[test]
fn a_berlin_window_follows_daylight_saving_time() {
    assert_berlin_office_hours(&office_hours());
}

/// A TZif file for a zone fixed at UTC+9 with no transitions (versions 1 and 2 blocks and
/// a POSIX footer): what a host with broken tzdata might hold under Europe/Berlin.
fn fixed_plus_nine_tzif() -> Vec<u8> {
    let block = |version: u8| {
        let mut b = b"TZif".to_vec();
        b.push(version);
        b.extend([0; 15]);
        // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        for count in [0u32, 0, 0, 0, 1, 4] {
            b.extend(count.to_be_bytes());
        }
        b.extend(32_400i32.to_be_bytes()); // utoff
        b.extend([0, 0]); // isdst, desigidx
        b.extend(b"XYZ\0");
        b
    };
    let mut file = block(b'2');
    file.extend(block(b'2'));
    file.extend(b"\nXYZ-9\n");
    file
}

/// Run by [`the_hosts_time_zone_database_is_never_read`] in a child process whose `TZDIR`
/// holds the wrong Europe/Berlin.
fn probe_with_a_wrong_host_database() {
    assert_berlin_office_hours(&office_hours());
    // jiff's global database (used by `in_tz`, `TimeZone::get`) is the bundled one too: the
    // workspace turns off the jiff features that read the host's tzdata.
    let winter = at("2026-01-12T12:00:00Z").in_tz("Europe/Berlin").unwrap();
    assert_eq!(winter.offset().seconds(), 3600, "{winter}");
}

#[test]
fn the_hosts_time_zone_database_is_never_read() {
    if std::env::var_os("CHARTER_TZ_PROBE").is_some() {
        probe_with_a_wrong_host_database();
        return;
    }
    let tzif = fixed_plus_nine_tzif();
    // The file is a valid zone that jiff would honour if it read it.
    let wrong = jiff::tz::TimeZone::tzif("Europe/Berlin", &tzif).unwrap();
    assert_eq!(
        wrong.to_offset(at("2026-01-12T12:00:00Z")).seconds(),
        9 * 3600
    );

    let dir = std::env::temp_dir().join(format!("charter-tzdir-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("Europe")).unwrap();
    std::fs::write(dir.join("Europe/Berlin"), &tzif).unwrap();
    std::fs::write(dir.join("UTC"), &tzif).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "time_zones::the_hosts_time_zone_database_is_never_read",
            "--exact",
        ])
        .env("CHARTER_TZ_PROBE", "1")
        .env("TZDIR", &dir)
        .env("TZ", "Europe/Berlin")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the probe failed with TZDIR={}:\n{stdout}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
