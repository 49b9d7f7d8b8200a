//! Statics a stripped build does not name, found from the machine code that loads them.
//!
//! Redis and Valkey link with `-rdynamic`, so a stripped binary still exports every global
//! function and variable in `.dynsym`, but file-local statics lose their names with
//! `.symtab`: `curr_functions_lib_ctx` (functions.c; `curr_functions_lib_ctx.lto_priv.0`
//! under LTO) and, in Valkey 9.1, `lru_clock` (lrulfu.c). Small exported functions read
//! them, e.g. `functionsLibCtxGetCurrent` is `mov rax, [rip+X]; ret` with X the static.
//! This module reads such a function's first bytes from the file and decodes its first
//! RIP-relative reference with a tiny hand-written x86-64 decoder that knows only the
//! handful of forms getters are made of and refuses everything else: a wrong address
//! would send the walker into unrelated memory, so "not found, because …" is preferred to
//! a guess.

use object::{Architecture, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

use crate::binary::{Executable, SymbolInfo};

/// How many bytes of a function are decoded at most: getters are a few instructions, and a
/// reference further in would not be the one the function is about.
pub const MAX_CODE_BYTES: usize = 64;

/// What an instruction does with the address it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `mov reg, [rip+X]`: reads `width` bytes stored at X (the function uses the static's
    /// value, e.g. returns the pointer it holds).
    Load {
        /// Operand size in bytes: 8 for `mov r64`, 4 for `mov r32`, 2 or 1.
        width: u8,
    },
    /// `lea reg, [rip+X]`: computes X itself (the function returns the static's address,
    /// so X is the object, not a pointer to it).
    AddressOf,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Load { width } => write!(f, "a {width}-byte load"),
            Access::AddressOf => f.write_str("an address computation (lea)"),
        }
    }
}

/// One decoded RIP-relative reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RipRef {
    /// Where the instruction starts, in bytes from the start of the decoded code.
    pub insn_offset: usize,
    /// Length of the instruction in bytes.
    pub insn_len: usize,
    /// The virtual address named: address of the next instruction + disp32.
    pub target: u64,
    /// Load or address computation.
    pub access: Access,
    /// Destination register (0 = rax … 15 = r15, REX.R included).
    pub register: u8,
}

/// Why no RIP-relative reference was decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside an instruction.
    #[error("the code ends inside the instruction at +{at}")]
    Truncated {
        /// Offset of the instruction.
        at: usize,
    },
    /// An instruction outside the small set this decoder knows.
    #[error("the instruction at +{at} (bytes {bytes}) is not one this decoder knows")]
    Unrecognized {
        /// Offset of the instruction.
        at: usize,
        /// Its first bytes, hex.
        bytes: String,
    },
    /// The first memory operand is not a RIP-relative `mov` load or `lea`.
    #[error("the first memory operand, at +{at}, is {what}, not a RIP-relative mov load or lea")]
    NotRipLoad {
        /// Offset of the instruction.
        at: usize,
        /// What it is.
        what: String,
    },
    /// A return, call or jump came before any reference.
    #[error("the instruction at +{at} is a {what} before any RIP-relative reference")]
    ControlFlow {
        /// Offset of the instruction.
        at: usize,
        /// `ret`, `call`, `jmp` or a conditional jump.
        what: &'static str,
    },
    /// The bytes end between instructions without a reference.
    #[error("no RIP-relative reference in the first {scanned} bytes")]
    NotFound {
        /// How many bytes were decoded.
        scanned: usize,
    },
}

/// Failure to find a static from the code of a function.
#[derive(Debug, thiserror::Error)]
pub enum CodeRefError {
    /// The executable does not parse as an object file.
    #[error("cannot parse the executable: {0}")]
    Parse(String),
    /// Only x86-64 code is decoded.
    #[error("unsupported architecture {0}: only x86-64 machine code is decoded")]
    UnsupportedArchitecture(String),
    /// The function has no defined symbol.
    #[error("no function {0} in .symtab or .dynsym")]
    NoFunction(String),
    /// The function's bytes are not in the file.
    #[error("the code of {function} is not in the file: {reason}")]
    NoCode {
        /// The function.
        function: String,
        /// Why.
        reason: String,
    },
    /// The code did not decode to a recognized reference.
    #[error("{function}: {source}")]
    Decode {
        /// The function.
        function: String,
        /// What the decoder found.
        #[source]
        source: DecodeError,
    },
    /// The reference points outside every section the loader maps.
    #[error("{function} references {target:#x}, which is in no loaded section")]
    OutsideImage {
        /// The function.
        function: String,
        /// The virtual address referenced.
        target: u64,
    },
    /// The reference points into a section a static cannot live in.
    #[error("{function} references {target:#x} in {section}, {why}")]
    BadSection {
        /// The function.
        function: String,
        /// The virtual address referenced.
        target: u64,
        /// The section holding it.
        section: String,
        /// Why that section is refused.
        why: &'static str,
    },
    /// The reference points below the executable's load base.
    #[error("{function} references {target:#x}, below the load base {base:#x}")]
    BelowBase {
        /// The function.
        function: String,
        /// The virtual address referenced.
        target: u64,
        /// Lowest virtual address of the image.
        base: u64,
    },
    /// The function uses the address in another way than the getter table expects.
    #[error("{function} starts with {found} of offset {offset:#x}, but {static_name} is read with {expected}")]
    WrongAccess {
        /// The static looked for.
        static_name: String,
        /// The function.
        function: String,
        /// The address referenced, as an offset from the load base.
        offset: u64,
        /// What the code does.
        found: Access,
        /// What the getter table says it does.
        expected: Access,
    },
    /// The reference lands in a named object other than the static (e.g. a field of
    /// `server` in a build where the getter reads the server struct instead).
    #[error("{function} reads {symbol}+{delta:#x}, not the static {static_name}")]
    OtherSymbol {
        /// The static looked for.
        static_name: String,
        /// The function.
        function: String,
        /// The symbol covering the address.
        symbol: String,
        /// Offset of the address into that symbol.
        delta: u64,
    },
    /// No getter of this static is known.
    #[error("no known function reads the static {0}")]
    NoKnownGetter(String),
    /// Two getters of the same static point at different addresses.
    #[error("the getters of {static_name} disagree: {first} reads offset {first_offset:#x}, {second} reads {second_offset:#x}")]
    Disagree {
        /// The static looked for.
        static_name: String,
        /// One getter.
        first: String,
        /// Its result (offset from the load base).
        first_offset: u64,
        /// Another getter.
        second: String,
        /// Its result.
        second_offset: u64,
    },
    /// Every known getter failed.
    #[error("the static {static_name} is not found from code: {tried}")]
    NotFound {
        /// The static looked for.
        static_name: String,
        /// Each getter tried, with why it failed.
        tried: String,
    },
}

/// A static located from the code of a function, relative to the executable's load base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRef {
    /// Offset of the static from the load base (the address of the ELF header in memory),
    /// the convention of [`SymbolInfo::offset`] and the profiles' `symbols`.
    pub offset: u64,
    /// Bytes the instruction reads (8 for a pointer); for [`Access::AddressOf`], the size
    /// of the symbol covering the address if the binary has one, else 0.
    pub size: u64,
    /// Whether the function loads the static or takes its address.
    pub access: Access,
    /// The function decoded.
    pub function: String,
    /// Offset of the decoded instruction from the load base (for reports).
    pub instruction: u64,
    /// The section the static is in (`.bss`, `.data`, …).
    pub section: String,
    /// The data symbol covering the address when the binary still has one (an unstripped
    /// build names the static itself), with the address's offset into it.
    pub covering_symbol: Option<(String, u64)>,
}

impl StaticRef {
    /// The result in the form [`Executable::symbol`] gives, so a caller can use either.
    pub fn symbol_info(&self) -> SymbolInfo {
        SymbolInfo {
            offset: self.offset,
            size: self.size,
        }
    }
}

/// An exported function known to read a static.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Getter {
    /// The static (its source name, without any `.lto_priv.N`).
    pub static_name: &'static str,
    /// The exported function.
    pub function: &'static str,
    /// What its first RIP-relative reference does with the static.
    pub access: Access,
}

/// Getters checked on real builds: Redis 7.0–8.x and Valkey 8–9 `functions.c` have
/// `functionsLibCtx *functionsLibCtxGetCurrent(void) { return curr_functions_lib_ctx; }`
/// (`mov rax,[rip+X]; ret` in Debian 12's 7.0.15, Valkey 8.1.8 and 9.1.2 and the LTO
/// Redis 8.2.3; after `endbr64` in the Debian builds of 8.0.2 and 8.6.3). Valkey 9.1's `lru_getIdleSecs` and `lru_import` both start with
/// `mov eax,[rip+lru_clock]` (a `uint32_t`); two getters cross-check each other. Builds
/// whose `lru_getIdleSecs` reads `server.unixtime` instead (no `lru_clock`) are refused by
/// the covering-symbol check of [`find_static`].
pub const KNOWN_GETTERS: &[Getter] = &[
    Getter {
        static_name: "curr_functions_lib_ctx",
        function: "functionsLibCtxGetCurrent",
        access: Access::Load { width: 8 },
    },
    Getter {
        static_name: "lru_clock",
        function: "lru_getIdleSecs",
        access: Access::Load { width: 4 },
    },
    Getter {
        static_name: "lru_clock",
        function: "lru_import",
        access: Access::Load { width: 4 },
    },
];

/// `endbr64`, the CET landing pad `-fcf-protection` puts first in every function.
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// Longest x86 instruction; also bounds the prefix loop.
const MAX_INSN_LEN: usize = 15;

/// The memory operand of a ModRM byte.
enum Mem {
    /// Register operand (mod = 11).
    None,
    /// `[rip + disp32]`.
    Rip(i32),
    /// Any other addressing form; `stack` when it is `[rsp+d]` or `[rbp+d]`, a frame slot.
    Other {
        /// Based on rsp or rbp with no index.
        stack: bool,
    },
}

/// A decoded ModRM (+ SIB + displacement).
struct ModRm {
    len: usize,
    reg: u8,
    mem: Mem,
}

/// Result of decoding one instruction.
enum Step {
    /// An instruction with no memory operand (or a nop): go on after `len` bytes.
    Skip(usize),
    /// The reference looked for.
    Found(RipRef),
}

/// Decode the first RIP-relative reference in `code`, whose first byte is at virtual
/// address `address`. Accepts only what precedes a load in a small getter (`endbr64`,
/// pushes and pops, nops, register-to-register moves and ALU operations, stack
/// adjustments, stores of arguments to `[rbp+d]`/`[rsp+d]`); the first other memory
/// operand must be `mov r, [rip+disp32]` (opcode 8B, or 8A
/// for a byte) or `lea r, [rip+disp32]` (8D), anything else is an error naming it.
pub fn decode_first_rip_ref(code: &[u8], address: u64) -> Result<RipRef, DecodeError> {
    let mut pos = 0;
    while pos < code.len() {
        match decode_one(code, pos, address)? {
            Step::Skip(len) => pos += len,
            Step::Found(found) => return Ok(found),
        }
    }
    Err(DecodeError::NotFound { scanned: pos })
}

fn hex_bytes(code: &[u8], at: usize) -> String {
    let end = code.len().min(at.saturating_add(8));
    code.get(at..end)
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mnemonic(op: u8) -> &'static str {
    match op {
        0x88 | 0x89 => "a mov store",
        0x8a | 0x8b => "a mov load",
        0x8d => "a lea",
        0x01 | 0x03 => "an add",
        0x09 | 0x0b => "an or",
        0x21 | 0x23 => "an and",
        0x29 | 0x2b => "a sub",
        0x31 | 0x33 => "a xor",
        0x39 | 0x3b => "a cmp",
        0x85 => "a test",
        0x81 | 0x83 => "an ALU operation with an immediate",
        _ => "an instruction",
    }
}

/// Decode the ModRM byte at `at` (and its SIB and displacement) of the instruction that
/// starts at `start`, whose REX byte is `rex` (0 if none).
fn modrm(code: &[u8], at: usize, start: usize, rex: u8) -> Result<ModRm, DecodeError> {
    let truncated = DecodeError::Truncated { at: start };
    let m = *code.get(at).ok_or(truncated.clone())?;
    let md = m >> 6;
    let rm = m & 7;
    let reg = (m >> 3) & 7;
    if md == 3 {
        return Ok(ModRm {
            len: 1,
            reg,
            mem: Mem::None,
        });
    }
    // In 64-bit mode mod=00 r/m=101 is [rip+disp32] whatever REX.B says.
    if md == 0 && rm == 5 {
        let disp = code
            .get(at + 1..at + 5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or(truncated)?;
        return Ok(ModRm {
            len: 5,
            reg,
            mem: Mem::Rip(i32::from_le_bytes(disp)),
        });
    }
    let (rex_x, rex_b) = (rex & 0x02 != 0, rex & 0x01 != 0);
    let mut len = 1;
    // rbp as a base needs a displacement (mod 00 r/m 101 is rip); rsp needs a SIB byte
    // with no index (index 100 without REX.X).
    let mut stack = !rex_b && rm == 5 && md != 0;
    if rm == 4 {
        let sib = *code.get(at + 1).ok_or(truncated.clone())?;
        len += 1;
        if md == 0 && sib & 7 == 5 {
            len += 4;
        }
        stack = !rex_b && !rex_x && sib & 7 == 4 && (sib >> 3) & 7 == 4;
    }
    len += match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if code.len() < at + len {
        return Err(truncated);
    }
    Ok(ModRm {
        len,
        reg,
        mem: Mem::Other { stack },
    })
}

/// Decode the instruction at `start`.
fn decode_one(code: &[u8], start: usize, address: u64) -> Result<Step, DecodeError> {
    if code.get(start..start + ENDBR64.len()) == Some(&ENDBR64[..]) {
        return Ok(Step::Skip(ENDBR64.len()));
    }
    if code
        .get(start..)
        .is_some_and(|rest| rest.len() < ENDBR64.len() && ENDBR64.starts_with(rest))
    {
        return Err(DecodeError::Truncated { at: start });
    }
    let truncated = || DecodeError::Truncated { at: start };
    let unrecognized = || DecodeError::Unrecognized {
        at: start,
        bytes: hex_bytes(code, start),
    };
    let byte = |i: usize| code.get(i).copied().ok_or_else(truncated);

    let mut i = start;
    let (mut opsize16, mut addr32, mut fs_gs, mut rep) = (false, false, false, false);
    loop {
        match byte(i)? {
            0x66 => opsize16 = true,
            0x67 => addr32 = true,
            // Segment overrides other than fs/gs do nothing in 64-bit mode (they pad nops).
            0x2e | 0x3e | 0x26 | 0x36 => {}
            0x64 | 0x65 => fs_gs = true,
            0xf2 | 0xf3 => rep = true,
            _ => break,
        }
        i += 1;
        if i - start >= MAX_INSN_LEN {
            return Err(unrecognized());
        }
    }
    let mut rex = 0u8;
    if (0x40..=0x4f).contains(&byte(i)?) {
        rex = byte(i)?;
        i += 1;
    }
    let rex_w = rex & 0x08 != 0;
    let rex_r = if rex & 0x04 != 0 { 8 } else { 0 };
    let op = byte(i)?;
    i += 1;

    // `rep ret` is an old AMD idiom; any other F2/F3 opcode is SSE or string code that a
    // getter does not start with.
    if rep && !matches!(op, 0xc3 | 0xc2) {
        return Err(unrecognized());
    }
    match op {
        0xc3 | 0xc2 => Err(DecodeError::ControlFlow {
            at: start,
            what: "ret",
        }),
        0xe8 => Err(DecodeError::ControlFlow {
            at: start,
            what: "call",
        }),
        0xe9 | 0xeb => Err(DecodeError::ControlFlow {
            at: start,
            what: "jmp",
        }),
        0x70..=0x7f => Err(DecodeError::ControlFlow {
            at: start,
            what: "conditional jump",
        }),
        // push/pop r64 (frame setup in unoptimized builds), nop / xchg ax,ax.
        0x50..=0x5f | 0x90 => Ok(Step::Skip(i - start)),
        0x0f => {
            let op2 = byte(i)?;
            i += 1;
            match op2 {
                // Multi-byte nop: its "memory operand" is never accessed.
                0x1f => {
                    let m = modrm(code, i, start, rex)?;
                    Ok(Step::Skip(i + m.len - start))
                }
                0x80..=0x8f => Err(DecodeError::ControlFlow {
                    at: start,
                    what: "conditional jump",
                }),
                _ => Err(unrecognized()),
            }
        }
        0x88..=0x8b
        | 0x8d
        | 0x01
        | 0x03
        | 0x09
        | 0x0b
        | 0x21
        | 0x23
        | 0x29
        | 0x2b
        | 0x31
        | 0x33
        | 0x39
        | 0x3b
        | 0x85 => {
            let m = modrm(code, i, start, rex)?;
            let end = i + m.len;
            match m.mem {
                Mem::None => Ok(Step::Skip(end - start)),
                Mem::Rip(disp) => {
                    let access = match op {
                        0x8d => Access::AddressOf,
                        0x8a => Access::Load { width: 1 },
                        0x8b if rex_w => Access::Load { width: 8 },
                        0x8b if opsize16 => Access::Load { width: 2 },
                        0x8b => Access::Load { width: 4 },
                        _ => {
                            return Err(DecodeError::NotRipLoad {
                                at: start,
                                what: format!("{} of [rip{disp:+#x}]", mnemonic(op)),
                            })
                        }
                    };
                    // 67 makes it [eip+disp32] (truncated to 32 bits); fs/gs make it
                    // thread-local. Neither names a static at a fixed image offset.
                    if addr32 || fs_gs {
                        return Err(DecodeError::NotRipLoad {
                            at: start,
                            what: format!(
                                "{} of [rip{disp:+#x}] with an {} prefix",
                                mnemonic(op),
                                if addr32 { "address-size" } else { "fs/gs" }
                            ),
                        });
                    }
                    let next = address.wrapping_add(end as u64);
                    Ok(Step::Found(RipRef {
                        insn_offset: start,
                        insn_len: end - start,
                        target: next.wrapping_add_signed(i64::from(disp)),
                        access,
                        register: m.reg | rex_r,
                    }))
                }
                // Unoptimized code spills its arguments to the frame first
                // (`mov [rbp-4], edi`): a store there touches no static.
                Mem::Other { stack: true } if matches!(op, 0x88 | 0x89) => {
                    Ok(Step::Skip(end - start))
                }
                Mem::Other { .. } => Err(DecodeError::NotRipLoad {
                    at: start,
                    what: format!("{} through a register", mnemonic(op)),
                }),
            }
        }
        // ALU with an immediate: `sub rsp, N` in a frame setup.
        0x81 | 0x83 => {
            let m = modrm(code, i, start, rex)?;
            let imm = match (op, opsize16) {
                (0x83, _) => 1,
                (_, true) => 2,
                _ => 4,
            };
            let end = i + m.len + imm;
            if code.len() < end {
                return Err(truncated());
            }
            match m.mem {
                Mem::None => Ok(Step::Skip(end - start)),
                Mem::Rip(disp) => Err(DecodeError::NotRipLoad {
                    at: start,
                    what: format!("{} on [rip{disp:+#x}]", mnemonic(op)),
                }),
                Mem::Other { .. } => Err(DecodeError::NotRipLoad {
                    at: start,
                    what: format!("{} through a register", mnemonic(op)),
                }),
            }
        }
        _ => Err(unrecognized()),
    }
}

/// Whether `symbol_name` is `name` or its LTO-renamed form `name.lto_priv.N`.
fn names_static(symbol_name: &str, name: &str) -> bool {
    symbol_name == name
        || symbol_name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(".lto_priv."))
}

/// The defined function `name`, from `.symtab` then `.dynsym`.
fn function_symbol<'data, 'file>(
    obj: &'file object::File<'data>,
    name: &str,
) -> Option<object::Symbol<'data, 'file>> {
    let is_it = |s: &object::Symbol<'data, 'file>| {
        s.name() == Ok(name) && s.is_definition() && s.kind() == SymbolKind::Text
    };
    obj.symbols()
        .find(is_it)
        .or_else(|| obj.dynamic_symbols().find(is_it))
}

/// The data symbol whose extent holds `address`, with the offset into it.
fn covering_symbol(obj: &object::File<'_>, address: u64) -> Option<(String, u64)> {
    obj.symbols()
        .chain(obj.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Data && s.is_definition())
        .find(|s| {
            let delta = address.wrapping_sub(s.address());
            address >= s.address() && (delta < s.size() || (s.size() == 0 && delta == 0))
        })
        .and_then(|s| Some((s.name().ok()?.to_owned(), address - s.address())))
}

/// Locate the static that exported `function` reads: decode its first RIP-relative
/// reference (see [`decode_first_rip_ref`]) and return the address it names as an
/// offset from the load base. The address must be in a loaded, non-executable section
/// other than the GOT (a GOT slot holds the address of a variable, not the variable).
pub fn static_loaded_by(exe: &Executable, function: &str) -> Result<StaticRef, CodeRefError> {
    let obj = object::File::parse(exe.bytes()).map_err(|e| CodeRefError::Parse(e.to_string()))?;
    if obj.architecture() != Architecture::X86_64 {
        return Err(CodeRefError::UnsupportedArchitecture(format!(
            "{:?}",
            obj.architecture()
        )));
    }
    let sym =
        function_symbol(&obj, function).ok_or_else(|| CodeRefError::NoFunction(function.into()))?;
    let no_code = |reason: String| CodeRefError::NoCode {
        function: function.into(),
        reason,
    };
    let section_index = sym
        .section_index()
        .ok_or_else(|| no_code("its symbol has no section".into()))?;
    let section = obj
        .section_by_index(section_index)
        .map_err(|e| no_code(e.to_string()))?;
    let address = sym.address();
    // The symbol's size bounds the code when it is recorded; a `ret` stops the decoder
    // anyway, so the cap only matters for a size-less symbol.
    let section_end = section.address().saturating_add(section.size());
    let mut len = section_end
        .saturating_sub(address)
        .min(MAX_CODE_BYTES as u64);
    if sym.size() > 0 {
        len = len.min(sym.size());
    }
    let code = section
        .data_range(address, len)
        .map_err(|e| no_code(e.to_string()))?
        .ok_or_else(|| no_code(format!("{address:#x}+{len} is outside its section's data")))?;
    let found = decode_first_rip_ref(code, address).map_err(|source| CodeRefError::Decode {
        function: function.into(),
        source,
    })?;
    let target = found.target;

    let holding: Vec<_> = obj
        .sections()
        .filter(|s| {
            let allocated = match s.flags() {
                object::SectionFlags::Elf { sh_flags, .. } => {
                    sh_flags.contains(object::elf::SHF_ALLOC)
                }
                _ => true,
            };
            allocated && target >= s.address() && target - s.address() < s.size()
        })
        .collect();
    // `.tbss` takes no address space, so its range overlaps the sections after it: a
    // TLS section counts only when nothing else holds the address.
    let is_tls = |s: &object::Section<'_, '_>| {
        matches!(s.kind(), SectionKind::Tls | SectionKind::UninitializedTls)
    };
    let target_section = holding
        .iter()
        .find(|s| !is_tls(s))
        .or_else(|| holding.first())
        .ok_or_else(|| CodeRefError::OutsideImage {
            function: function.into(),
            target,
        })?;
    let section_name = target_section.name().unwrap_or("?").to_owned();
    let bad = |why: &'static str| CodeRefError::BadSection {
        function: function.into(),
        target,
        section: section_name.clone(),
        why,
    };
    if section_name.starts_with(".got") {
        return Err(bad(
            "the global offset table: the code reads a variable's address, not the variable",
        ));
    }
    match target_section.kind() {
        SectionKind::Text => return Err(bad("which holds code, not data")),
        SectionKind::Tls | SectionKind::UninitializedTls => {
            return Err(bad("a thread-local section"))
        }
        _ => {}
    }

    let base = exe.first_vaddr;
    let below = |t: u64| CodeRefError::BelowBase {
        function: function.into(),
        target: t,
        base,
    };
    let offset = target.checked_sub(base).ok_or_else(|| below(target))?;
    let instruction = address
        .wrapping_add(found.insn_offset as u64)
        .checked_sub(base)
        .ok_or_else(|| below(address))?;
    let covering = covering_symbol(&obj, target);
    let size = match found.access {
        Access::Load { width } => u64::from(width),
        Access::AddressOf => covering
            .as_ref()
            .filter(|(_, delta)| *delta == 0)
            .and_then(|(name, _)| obj.symbols().find(|s| s.name() == Ok(name.as_str())))
            .map_or(0, |s| s.size()),
    };
    Ok(StaticRef {
        offset,
        size,
        access: found.access,
        function: function.into(),
        instruction,
        section: section_name,
        covering_symbol: covering,
    })
}

/// Check one getter's result against what [`KNOWN_GETTERS`] says of it.
fn check_getter(getter: &Getter, found: StaticRef) -> Result<StaticRef, CodeRefError> {
    // In an unstripped build the static names itself; any other name means the getter
    // reads something else in this build (another version's code). Checked first: the
    // name says more than the width.
    if let Some((symbol, delta)) = &found.covering_symbol {
        if !(names_static(symbol, getter.static_name) && *delta == 0) {
            return Err(CodeRefError::OtherSymbol {
                static_name: getter.static_name.into(),
                function: getter.function.into(),
                symbol: symbol.clone(),
                delta: *delta,
            });
        }
    }
    if found.access != getter.access {
        return Err(CodeRefError::WrongAccess {
            static_name: getter.static_name.into(),
            function: getter.function.into(),
            offset: found.offset,
            found: found.access,
            expected: getter.access,
        });
    }
    Ok(found)
}

/// Locate the static `name` from the code of its [`KNOWN_GETTERS`]. Every getter present
/// in the binary is decoded; those that succeed must agree. Use it when
/// [`Executable::symbol`] finds nothing (a stripped build).
pub fn find_static(exe: &Executable, name: &str) -> Result<StaticRef, CodeRefError> {
    let getters: Vec<&Getter> = KNOWN_GETTERS
        .iter()
        .filter(|g| g.static_name == name)
        .collect();
    if getters.is_empty() {
        return Err(CodeRefError::NoKnownGetter(name.into()));
    }
    let mut found: Option<StaticRef> = None;
    let mut tried = Vec::new();
    for getter in getters {
        match static_loaded_by(exe, getter.function).and_then(|r| check_getter(getter, r)) {
            Ok(r) => match &found {
                Some(first) if first.offset != r.offset => {
                    return Err(CodeRefError::Disagree {
                        static_name: name.into(),
                        first: first.function.clone(),
                        first_offset: first.offset,
                        second: r.function,
                        second_offset: r.offset,
                    })
                }
                Some(_) => {}
                None => found = Some(r),
            },
            // Architecture is a property of the file: every getter would say the same.
            Err(e @ CodeRefError::UnsupportedArchitecture(_)) => return Err(e),
            Err(e) => tried.push(e.to_string()),
        }
    }
    found.ok_or_else(|| CodeRefError::NotFound {
        static_name: name.into(),
        tried: tried.join("; "),
    })
}

#[cfg(test)]
mod tests;
