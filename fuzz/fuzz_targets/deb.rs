//! The Sysbox package reader on arbitrary bytes: the ar container, the compressed data member
//! (xz, gz, zstd), the tar stream and every entry check. A `--sysbox-deb` file is only as trusted
//! as the operator's copy, so no input may panic, hang, or write outside the root it was given.
#![no_main]

use clawster_agent::bootstrap::deb;
use clawster_core::fs::HostRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // On tmpfs when there is one: the reader fsyncs what it writes, and a disk makes that the cost.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let pkg = dir.path().join("in.deb");
    std::fs::write(&pkg, data).expect("write input");
    let root_dir = dir.path().join("root");
    std::fs::create_dir(&root_dir).expect("mkdir root");
    let root = HostRoot::new(&root_dir);
    if let Ok(mut staged) = deb::stage_sysbox(&pkg, &root) {
        // Whatever was accepted lands under the root, and only there.
        let _ = staged.commit_binaries();
    }
    let out = dir.path().join("extract");
    std::fs::create_dir(&out).expect("mkdir extract");
    let _ = deb::extract_all(&pkg, &out);
    // Nothing may appear next to the root: every write stays below the directory it was given.
    for entry in std::fs::read_dir(dir.path()).expect("read_dir") {
        let name = entry.expect("entry").file_name();
        assert!(
            matches!(name.to_str(), Some("in.deb" | "root" | "extract")),
            "the reader wrote {name:?} outside its root"
        );
    }
});
