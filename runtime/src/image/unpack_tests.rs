//! Hostile layers: nothing may be written outside the unpack directory.
//! Anchors: CVE-2021-32760, CVE-2021-29136, CVE-2018-15664, RUSTSEC-2018-0002,
//! RUSTSEC-2021-0080, CVE-2026-33055/33056.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::unpack::unpack_layer;

/// Appends an entry with a raw (unchecked) name and link name.
fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    name: &str,
    link: &str,
    mode: u32,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).expect("append to in-memory tar");
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dest: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("layer");
    let outside = tmp.path().join("outside");
    fs::create_dir(&dest).expect("mkdir");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("victim"), b"original").expect("write");
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).expect("chmod");
    Fixture {
        _tmp: tmp,
        dest,
        outside,
    }
}

fn assert_outside_untouched(f: &Fixture) {
    let names: Vec<_> = fs::read_dir(&f.outside)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("victim")],
        "new files outside"
    );
    assert_eq!(
        fs::read(f.outside.join("victim")).expect("read"),
        b"original"
    );
    assert_eq!(
        fs::metadata(&f.outside).expect("stat").permissions().mode() & 0o7777,
        0o700
    );
    assert!(!f.dest.parent().expect("parent").join("escape.txt").exists());
}

fn unpack(f: &Fixture, b: tar::Builder<Vec<u8>>) {
    let bytes = b.into_inner().expect("finish tar");
    unpack_layer(&bytes[..], &f.dest, "sha256:test", 1 << 20).expect("unpack");
}

#[test]
fn path_traversal_entries_are_skipped_or_confined() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        tar::EntryType::Regular,
        "../escape.txt",
        "",
        0o644,
        b"x",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "a/../../escape.txt",
        "",
        0o644,
        b"x",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "../outside/victim",
        "",
        0o644,
        b"pwned",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "/abs.txt",
        "",
        0o644,
        b"abs",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "./ok/file",
        "",
        0o644,
        b"ok",
    );
    unpack(&f, b);
    assert_outside_untouched(&f);
    assert_eq!(
        fs::read(f.dest.join("abs.txt")).expect("abs.txt inside"),
        b"abs"
    );
    assert_eq!(fs::read(f.dest.join("ok/file")).expect("ok/file"), b"ok");
}

#[test]
fn symlink_escape_then_write_through_it_stays_inside() {
    let f = fixture();
    let outside = f.outside.to_string_lossy().into_owned();
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        tar::EntryType::Symlink,
        "rel",
        "../outside",
        0o777,
        b"",
    );
    raw(&mut b, tar::EntryType::Symlink, "abs", &outside, 0o777, b"");
    raw(
        &mut b,
        tar::EntryType::Regular,
        "rel/victim",
        "",
        0o644,
        b"pwned",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "abs/victim",
        "",
        0o644,
        b"pwned",
    );
    raw(
        &mut b,
        tar::EntryType::Regular,
        "abs/new",
        "",
        0o644,
        b"pwned",
    );
    raw(&mut b, tar::EntryType::Directory, "rel/sub", "", 0o755, b"");
    // Symlink then a directory entry of the same name: must not chmod the target (CVE-2026-33055).
    raw(&mut b, tar::EntryType::Symlink, "chm", &outside, 0o777, b"");
    raw(&mut b, tar::EntryType::Directory, "chm", "", 0o777, b"");
    // A symlink named "." (CVE-2021-29136) and writes after it.
    raw(&mut b, tar::EntryType::Symlink, ".", &outside, 0o777, b"");
    raw(
        &mut b,
        tar::EntryType::Regular,
        "victim",
        "",
        0o644,
        b"pwned",
    );
    unpack(&f, b);
    assert_outside_untouched(&f);
    assert!(fs::symlink_metadata(f.dest.join("rel"))
        .expect("rel")
        .file_type()
        .is_symlink());
    assert!(fs::symlink_metadata(f.dest.join("chm"))
        .expect("chm")
        .is_dir());
    assert_eq!(
        fs::read(f.dest.join("victim")).expect("victim inside"),
        b"pwned"
    );
}

#[test]
fn hardlink_to_host_file_is_not_created() {
    let f = fixture();
    let passwd_links = fs::metadata("/etc/passwd").expect("stat").nlink();
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        tar::EntryType::Link,
        "passwd",
        "/etc/passwd",
        0o644,
        b"",
    );
    raw(
        &mut b,
        tar::EntryType::Link,
        "victim",
        "../outside/victim",
        0o644,
        b"",
    );
    raw(
        &mut b,
        tar::EntryType::Symlink,
        "up",
        "../outside",
        0o777,
        b"",
    );
    raw(&mut b, tar::EntryType::Link, "v2", "up/victim", 0o644, b"");
    raw(&mut b, tar::EntryType::Regular, "real", "", 0o644, b"data");
    raw(&mut b, tar::EntryType::Link, "real2", "real", 0o644, b"");
    raw(
        &mut b,
        tar::EntryType::Regular,
        "passwd",
        "",
        0o644,
        b"overwrite?",
    );
    unpack(&f, b);
    assert_outside_untouched(&f);
    assert_eq!(
        fs::metadata("/etc/passwd").expect("stat").nlink(),
        passwd_links
    );
    assert_eq!(fs::read(f.dest.join("real2")).expect("real2"), b"data");
    assert_eq!(
        fs::read(f.dest.join("passwd")).expect("passwd"),
        b"overwrite?"
    );
    assert!(!f.dest.join("victim").exists());
    assert!(!f.dest.join("v2").exists());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, tar::EntryType::Directory, "d", "", 0o755, b"");
    raw(
        &mut b,
        tar::EntryType::Regular,
        "d/.wh..wh..opq",
        "",
        0o644,
        b"",
    );
    raw(&mut b, tar::EntryType::Regular, ".wh.gone", "", 0o644, b"");
    raw(&mut b, tar::EntryType::Regular, "x/.wh...", "", 0o644, b"");
    raw(
        &mut b,
        tar::EntryType::Regular,
        "../.wh.victim",
        "",
        0o644,
        b"",
    );
    unpack(&f, b);
    assert_outside_untouched(&f);
    let st = fs::symlink_metadata(f.dest.join("gone")).expect("whiteout");
    assert!(st.file_type().is_char_device());
    assert_eq!(st.rdev(), 0);
    assert!(!f.dest.join(".wh.gone").exists());
    assert!(!f.dest.join("d/.wh..wh..opq").exists());
    if nix::unistd::geteuid().is_root() {
        let mut buf = [0u8; 4];
        let c =
            std::ffi::CString::new(f.dest.join("d").to_string_lossy().as_bytes()).expect("cstring");
        #[allow(unsafe_code)]
        // SAFETY: c and the attribute name are NUL-terminated; buf is writable for its length.
        let n = unsafe {
            libc::getxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(n, 1);
        assert_eq!(buf[0], b'y');
    }
}

#[test]
fn decompression_bomb_is_capped() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    raw(
        &mut b,
        tar::EntryType::Regular,
        "big",
        "",
        0o644,
        &vec![0u8; 2 << 20],
    );
    let bytes = b.into_inner().expect("finish");
    let err = unpack_layer(&bytes[..], &f.dest, "sha256:bomb", 1 << 20).expect_err("limit");
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn modes_and_setuid_are_kept_inside() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, tar::EntryType::Regular, "bin/su", "", 0o4755, b"#!");
    unpack(&f, b);
    let m = fs::metadata(Path::new(&f.dest).join("bin/su")).expect("su");
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
}
