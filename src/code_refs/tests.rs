//! Unit tests of `code_refs`.

use super::*;

const BASE: u64 = 0x1000;

#[test]
fn endbr64_then_mov_rax_rip_ret() {
    // endbr64; mov rax, [rip+0x121a01]; ret
    let code = [
        0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x05, 0x01, 0x1a, 0x12, 0x00, 0xc3,
    ];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.insn_offset, 4);
    assert_eq!(r.insn_len, 7);
    assert_eq!(r.target, BASE + 11 + 0x121a01);
    assert_eq!(r.access, Access::Load { width: 8 });
    assert_eq!(r.register, 0);
}

#[test]
fn debian_7_0_15_getter_bytes() {
    // functionsLibCtxGetCurrent of Debian 12's redis-check-rdb at 0x1454b0.
    let code = [0x48, 0x8b, 0x05, 0x01, 0x1a, 0x12, 0x00, 0xc3];
    let r = decode_first_rip_ref(&code, 0x1454b0).unwrap();
    assert_eq!(r.target, 0x266eb8);
}

#[test]
fn mov_r32_and_negative_displacement() {
    // mov eax, [rip-0x10]; sub eax, edi; ret
    let code = [0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff, 0x29, 0xf8, 0xc3];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.access, Access::Load { width: 4 });
    assert_eq!(r.target, BASE + 6 - 0x10);
}

#[test]
fn mov_r16_r8_and_rex_r_register() {
    // mov ax, [rip+0]
    let r = decode_first_rip_ref(&[0x66, 0x8b, 0x05, 0, 0, 0, 0], BASE).unwrap();
    assert_eq!(r.access, Access::Load { width: 2 });
    // mov al, [rip+0]
    let r = decode_first_rip_ref(&[0x8a, 0x05, 0, 0, 0, 0], BASE).unwrap();
    assert_eq!(r.access, Access::Load { width: 1 });
    // mov r9, [rip+4] (REX.WR, reg=001)
    let r = decode_first_rip_ref(&[0x4c, 0x8b, 0x0d, 4, 0, 0, 0], BASE).unwrap();
    assert_eq!(r.register, 9);
    assert_eq!(r.target, BASE + 7 + 4);
    // REX.B does not turn rm=101 into r13: still [rip+disp32].
    let r = decode_first_rip_ref(&[0x49, 0x8b, 0x05, 0, 0, 0, 0], BASE).unwrap();
    assert_eq!(r.target, BASE + 7);
}

#[test]
fn lea_is_reported_as_address_of() {
    // lea rax, [rip+0x20]; ret
    let code = [0x48, 0x8d, 0x05, 0x20, 0, 0, 0, 0xc3];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.access, Access::AddressOf);
    assert_eq!(r.target, BASE + 7 + 0x20);
}

#[test]
fn unoptimized_frame_is_skipped() {
    // push rbp; mov rbp, rsp; sub rsp, 0x10; mov rax, [rip+8]; leave... (stops at load)
    let code = [
        0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0x48, 0x8b, 0x05, 8, 0, 0, 0,
    ];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.insn_offset, 8);
    assert_eq!(r.target, BASE + 15 + 8);
    // Multi-byte nops with prefixes before the load.
    let code = [
        0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x66, 0x90, 0x48, 0x8b, 0x05, 0, 0, 0, 0,
    ];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.insn_offset, 12);
}

#[test]
fn argument_spills_to_the_frame_are_skipped() {
    // push rbp; mov rbp,rsp; mov [rbp-4],edi; mov [rsp+8],rsi; mov eax,[rip+0]
    let code = [
        0x55, 0x48, 0x89, 0xe5, 0x89, 0x7d, 0xfc, 0x48, 0x89, 0x74, 0x24, 0x08, 0x8b, 0x05, 0, 0,
        0, 0,
    ];
    let r = decode_first_rip_ref(&code, BASE).unwrap();
    assert_eq!(r.insn_offset, 12);
    // A store through r13 (REX.B on r/m 101) or with an index is not a frame slot.
    let e = decode_first_rip_ref(&[0x41, 0x89, 0x7d, 0xfc], BASE).unwrap_err();
    assert!(
        e.to_string().contains("mov store through a register"),
        "{e}"
    );
    let e = decode_first_rip_ref(&[0x89, 0x7c, 0x0c, 0x08], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::NotRipLoad { .. }), "{e}");
    // A load from the frame is not skipped.
    let e = decode_first_rip_ref(&[0x8b, 0x45, 0xfc], BASE).unwrap_err();
    assert!(e.to_string().contains("mov load through a register"), "{e}");
}

#[test]
fn unknown_opcode_is_named() {
    // mov eax, imm32
    let e = decode_first_rip_ref(&[0xb8, 1, 0, 0, 0, 0xc3], BASE).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Unrecognized {
            at: 0,
            bytes: "b8 01 00 00 00 c3".into()
        }
    );
    assert!(e.to_string().contains("b8 01"), "{e}");
    // An SSE load (F3 0F 7E) is refused rather than half-decoded.
    let e = decode_first_rip_ref(&[0xf3, 0x0f, 0x7e, 0x05, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::Unrecognized { at: 0, .. }), "{e}");
}

#[test]
fn non_rip_memory_and_stores_are_refused() {
    // mov rax, [rdi+8]
    let e = decode_first_rip_ref(&[0x48, 0x8b, 0x47, 0x08], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::NotRipLoad { at: 0, .. }), "{e}");
    assert!(e.to_string().contains("through a register"), "{e}");
    // mov [rip+0], rax: a store is not a getter's load.
    let e = decode_first_rip_ref(&[0x48, 0x89, 0x05, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(e.to_string().contains("mov store"), "{e}");
    // cmp [rip+0], eax
    let e = decode_first_rip_ref(&[0x39, 0x05, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::NotRipLoad { .. }), "{e}");
    // mov rax, fs:[rip+0] and mov eax, [eip+0]
    let e = decode_first_rip_ref(&[0x64, 0x48, 0x8b, 0x05, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(e.to_string().contains("fs/gs"), "{e}");
    let e = decode_first_rip_ref(&[0x67, 0x8b, 0x05, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(e.to_string().contains("address-size"), "{e}");
}

#[test]
fn control_flow_first_is_refused() {
    let e = decode_first_rip_ref(&[0x31, 0xc0, 0xc3], BASE).unwrap_err();
    assert_eq!(e, DecodeError::ControlFlow { at: 2, what: "ret" });
    let e = decode_first_rip_ref(&[0xe9, 0, 0, 0, 0], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::ControlFlow { what: "jmp", .. }));
    let e = decode_first_rip_ref(&[0xf3, 0xc3], BASE).unwrap_err();
    assert!(matches!(e, DecodeError::ControlFlow { what: "ret", .. }));
}

#[test]
fn truncated_input_is_an_error_at_every_cut() {
    let code = [
        0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x8b, 0x05, 1, 2, 3, 4,
    ];
    for cut in 0..code.len() {
        let e = decode_first_rip_ref(&code[..cut], BASE).unwrap_err();
        match e {
            DecodeError::Truncated { .. } | DecodeError::NotFound { .. } => {}
            other => panic!("cut at {cut}: {other}"),
        }
    }
    assert_eq!(
        decode_first_rip_ref(&code[..13], BASE).unwrap_err(),
        DecodeError::Truncated { at: 8 }
    );
    assert_eq!(
        decode_first_rip_ref(&[], BASE).unwrap_err(),
        DecodeError::NotFound { scanned: 0 }
    );
    // A SIB byte or a displacement cut off.
    assert!(matches!(
        decode_first_rip_ref(&[0x48, 0x8b, 0x04], BASE),
        Err(DecodeError::Truncated { at: 0 })
    ));
    assert!(matches!(
        decode_first_rip_ref(&[0x48, 0x83, 0xec], BASE),
        Err(DecodeError::Truncated { at: 0 })
    ));
    // Nothing but prefixes.
    assert!(matches!(
        decode_first_rip_ref(&[0x66; 20], BASE),
        Err(DecodeError::Unrecognized { at: 0, .. })
    ));
}

#[test]
fn address_wraps_instead_of_overflowing() {
    let r = decode_first_rip_ref(&[0x8b, 0x05, 0xff, 0xff, 0xff, 0x7f], u64::MAX - 2).unwrap();
    assert_eq!(r.target, (u64::MAX - 2).wrapping_add(6 + 0x7fff_ffff));
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    // Every 3-byte start followed by a pseudo-random tail, cut at every length.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let mut code = vec![a, b, next()];
            code.extend((0..13).map(|_| next()));
            for cut in [0, 1, 2, 3, 5, 9, code.len()] {
                let _ = decode_first_rip_ref(&code[..cut], u64::MAX - 4);
            }
        }
    }
}

#[test]
fn lto_names_count_as_the_static() {
    assert!(names_static(
        "curr_functions_lib_ctx.lto_priv.0",
        "curr_functions_lib_ctx"
    ));
    assert!(names_static("lru_clock", "lru_clock"));
    assert!(!names_static("lru_clock_max", "lru_clock"));
    assert!(!names_static("server", "lru_clock"));
}
