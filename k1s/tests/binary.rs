//! How the `k1s` binary is linked (k1s/build.rs).

/// ELF `e_type` of a position-dependent executable; a PIE is `ET_DYN` (3).
const ET_EXEC: u16 = 2;

#[test]
fn the_binary_is_position_dependent_unless_built_with_k1s_pie() {
    use std::io::Read;
    let mut bin = [0u8; 18];
    std::fs::File::open(env!("CARGO_BIN_EXE_k1s"))
        .and_then(|mut f| f.read_exact(&mut bin))
        .expect("read the k1s binary's ELF header");
    assert_eq!(&bin[..4], b"\x7fELF", "not an ELF file");
    let e_type = u16::from_le_bytes([bin[16], bin[17]]);
    if option_env!("K1S_PIE") == Some("1") {
        assert_eq!(e_type, 3, "K1S_PIE=1 should keep the PIE default");
    } else {
        assert_eq!(
            e_type, ET_EXEC,
            "k1s should be linked with -no-pie: a PIE relocates (and so copies) 0.8 MB of \
             pointers in every shim"
        );
    }
}
