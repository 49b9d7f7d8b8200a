//! Reading the type DIEs of an executable (and its `.gnu_debugaltlink` supplementary file)
//! into an owned index, and resolving struct layouts from it.
//!
//! Only what layouts need is kept: structs, unions, typedefs, qualifiers, pointers, base
//! and enumeration types, arrays with their bounds, and struct members with their
//! offsets (constant or `DW_OP_plus_uconst`-style location expression) and bit-field
//! attributes (`DW_AT_data_bit_offset`, or the older MSB-based `DW_AT_bit_offset`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use gimli::{AttributeValue, EndianSlice, RunTimeEndian};

use crate::profile::schema::{FieldSpec, StructSpec};

/// The gimli reader used over the (possibly decompressed) section bytes.
pub(crate) type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// Which file a DIE lives in: the executable, or its supplementary (dwz) file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FileId {
    Main,
    Sup,
}

/// A DIE, globally: file and `.debug_info` offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DieRef {
    file: FileId,
    offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Struct,
    Union,
    Typedef,
    Qualifier,
    Pointer,
    Base,
    Enum,
    Array,
    Subroutine,
}

/// Where a member starts, in bytes from its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemberLoc {
    /// No `DW_AT_data_member_location` (union members; DWARF 5 bit-fields).
    Absent,
    /// A byte offset.
    Bytes(u64),
    /// A location the resolver cannot evaluate (named in warnings).
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: Option<String>,
    pub type_ref: Option<DieRef>,
    pub loc: MemberLoc,
    pub bit_size: Option<u64>,
    /// `DW_AT_bit_offset` (DWARF ≤ 4, MSB-based).
    pub bit_offset: Option<i64>,
    /// `DW_AT_data_bit_offset` (DWARF 4+, from the start of the parent).
    pub data_bit_offset: Option<u64>,
    /// `DW_AT_byte_size` of the bit-field's storage unit.
    pub byte_size: Option<u64>,
}

/// One array dimension: element count, or `None` for an unbounded (flexible) array.
pub(crate) type Dim = Option<u64>;

#[derive(Debug, Clone)]
pub(crate) struct Die {
    pub kind: Kind,
    pub name: Option<String>,
    pub byte_size: Option<u64>,
    pub type_ref: Option<DieRef>,
    pub declaration: bool,
    pub members: Vec<Member>,
    pub dims: Vec<Dim>,
    /// Index into [`TypeIndex::units`].
    pub unit: usize,
}

/// One compilation (or partial) unit.
#[derive(Debug, Clone)]
pub(crate) struct UnitInfo {
    /// `DW_AT_comp_dir`/`DW_AT_name`, when present.
    pub path: String,
    /// Bytes per address.
    pub address_size: u8,
    /// DWARF version of the unit header.
    pub version: u16,
    /// A `DW_TAG_partial_unit` (dwz), whose types belong to the units importing it.
    pub partial: bool,
    /// Units this one imports (`DW_TAG_imported_unit`), by their root DIE.
    pub imports: Vec<DieRef>,
    /// Defines `server`, or is imported (transitively) by a unit that does.
    pub server_side: bool,
    /// Outside `deps/`: a compile unit not under `deps/`, or a partial unit imported by one.
    pub outside_deps: bool,
}

/// Every type DIE of a binary, by global reference, with name indexes.
#[derive(Debug, Default)]
pub(crate) struct TypeIndex {
    pub dies: HashMap<DieRef, Die>,
    pub units: Vec<UnitInfo>,
    /// Complete (non-declaration) struct definitions by tag name, in DIE order.
    pub structs: HashMap<String, Vec<DieRef>>,
    /// Typedefs by name, in DIE order.
    pub typedefs: HashMap<String, Vec<DieRef>>,
    /// Units that define the global variable `server`.
    pub server_units: HashSet<usize>,
    /// Unit index by the DIE offset of its root.
    unit_roots: HashMap<DieRef, usize>,
}

/// A failure while reading the DWARF.
pub(crate) type ParseResult<T> = Result<T, gimli::Error>;

fn attr_u64(v: Option<AttributeValue<R<'_>>>) -> Option<u64> {
    v.and_then(|v| v.udata_value())
}

/// A constant whose sign depends on its form: `DW_FORM_sdata` is signed, the fixed-size
/// data forms are taken as unsigned.
fn attr_i128(v: Option<AttributeValue<R<'_>>>) -> Option<i128> {
    match v? {
        AttributeValue::Sdata(s) => Some(i128::from(s)),
        AttributeValue::Data1(d) => Some(i128::from(d)),
        AttributeValue::Data2(d) => Some(i128::from(d)),
        AttributeValue::Data4(d) => Some(i128::from(d)),
        AttributeValue::Data8(d) => Some(i128::from(d)),
        AttributeValue::Udata(d) => Some(i128::from(d)),
        _ => None,
    }
}

/// Evaluate a member location expression with the struct's address as 0 on the stack.
/// Supports what C compilers emit: `DW_OP_plus_uconst`, constants and `DW_OP_plus`.
pub(crate) fn eval_member_location(
    expr: gimli::Expression<R<'_>>,
    encoding: gimli::Encoding,
) -> Result<u64, String> {
    let mut stack: Vec<u64> = vec![0];
    let mut ops = expr.operations(encoding);
    loop {
        let op = match ops.next() {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(e) => return Err(format!("unreadable location expression: {e}")),
        };
        match op {
            gimli::Operation::PlusConstant { value } => {
                let top = stack.pop().ok_or("location expression underflows")?;
                stack.push(top.wrapping_add(value));
            }
            gimli::Operation::UnsignedConstant { value } => stack.push(value),
            gimli::Operation::SignedConstant { value } => stack.push(value as u64),
            gimli::Operation::Plus => {
                let a = stack.pop().ok_or("location expression underflows")?;
                let b = stack.pop().ok_or("location expression underflows")?;
                stack.push(a.wrapping_add(b));
            }
            other => return Err(format!("unsupported location operation {other:?}")),
        }
    }
    stack
        .pop()
        .ok_or_else(|| "empty location expression".to_owned())
}

fn kind_of(tag: gimli::DwTag) -> Option<Kind> {
    use gimli::constants as c;
    Some(match tag {
        c::DW_TAG_structure_type => Kind::Struct,
        c::DW_TAG_union_type => Kind::Union,
        c::DW_TAG_typedef => Kind::Typedef,
        c::DW_TAG_const_type
        | c::DW_TAG_volatile_type
        | c::DW_TAG_restrict_type
        | c::DW_TAG_atomic_type => Kind::Qualifier,
        c::DW_TAG_pointer_type | c::DW_TAG_reference_type => Kind::Pointer,
        c::DW_TAG_base_type => Kind::Base,
        c::DW_TAG_enumeration_type => Kind::Enum,
        c::DW_TAG_array_type => Kind::Array,
        c::DW_TAG_subroutine_type => Kind::Subroutine,
        _ => return None,
    })
}

impl TypeIndex {
    /// Read every unit of `dwarf` (and of its supplementary file, if set).
    pub fn load(dwarf: &gimli::Dwarf<R<'_>>) -> ParseResult<TypeIndex> {
        let mut index = TypeIndex::default();
        index.load_file(dwarf, FileId::Main)?;
        if let Some(sup) = dwarf.sup() {
            index.load_file(sup, FileId::Sup)?;
        }
        for list in index.structs.values_mut() {
            list.sort();
        }
        for list in index.typedefs.values_mut() {
            list.sort();
        }
        index.propagate_imports();
        Ok(index)
    }

    /// Decide `server_side` and `outside_deps` for every unit, following partial units to
    /// the compile units that import them.
    fn propagate_imports(&mut self) {
        let n = self.units.len();
        let mut importers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (u, info) in self.units.iter().enumerate() {
            for t in &info.imports {
                if let Some(&target) = self.unit_roots.get(t) {
                    if let Some(list) = importers.get_mut(target) {
                        list.push(u);
                    }
                }
            }
        }
        for u in 0..n {
            // Walk up the importer graph from u.
            let mut seen = HashSet::new();
            let mut stack = vec![u];
            let (mut server, mut outside, mut any_cu) = (false, false, false);
            while let Some(x) = stack.pop() {
                if !seen.insert(x) {
                    continue;
                }
                let Some(info) = self.units.get(x) else {
                    continue;
                };
                if self.server_units.contains(&x) {
                    server = true;
                }
                if !info.partial {
                    any_cu = true;
                    if !info.path.contains("/deps/") && !info.path.starts_with("deps/") {
                        outside = true;
                    }
                }
                stack.extend(importers.get(x).into_iter().flatten().copied());
            }
            if let Some(info) = self.units.get_mut(u) {
                info.server_side = server;
                // A partial unit nobody imports is taken as Redis's own.
                info.outside_deps = outside || !any_cu;
            }
        }
    }

    fn load_file(&mut self, dwarf: &gimli::Dwarf<R<'_>>, file: FileId) -> ParseResult<()> {
        let mut headers = dwarf.units();
        while let Some(header) = headers.next()? {
            let unit = dwarf.unit(header)?;
            self.load_unit(dwarf, &unit, file)?;
        }
        Ok(())
    }

    fn load_unit(
        &mut self,
        dwarf: &gimli::Dwarf<R<'_>>,
        unit: &gimli::Unit<R<'_>>,
        file: FileId,
    ) -> ParseResult<()> {
        let unit_idx = self.units.len();
        let path = match (&unit.comp_dir, &unit.name) {
            (Some(d), Some(n)) => format!("{}/{}", d.to_string_lossy(), n.to_string_lossy()),
            (None, Some(n)) => n.to_string_lossy().into_owned(),
            _ => String::new(),
        };
        self.units.push(UnitInfo {
            path,
            address_size: unit.header.address_size(),
            version: unit.header.version(),
            partial: false,
            imports: Vec::new(),
            server_side: false,
            outside_deps: false,
        });
        let encoding = unit.encoding();
        let to_ref = |v: AttributeValue<R<'_>>| -> Option<DieRef> {
            match v {
                AttributeValue::UnitRef(o) => o
                    .to_debug_info_offset(&unit.header)
                    .map(|d| DieRef { file, offset: d.0 }),
                AttributeValue::DebugInfoRef(d) => Some(DieRef { file, offset: d.0 }),
                AttributeValue::DebugInfoRefSup(d) => Some(DieRef {
                    file: FileId::Sup,
                    offset: d.0,
                }),
                _ => None,
            }
        };
        let name_of = |e: &gimli::DebuggingInformationEntry<R<'_>>| -> Option<String> {
            let v = e.attr_value(gimli::DW_AT_name)?;
            dwarf
                .attr_string(unit, v)
                .ok()
                .map(|s| s.to_string_lossy().into_owned())
        };
        // parents[d] = the container (struct, union or array) at depth d, if any.
        let mut parents: Vec<Option<DieRef>> = Vec::new();
        let mut cursor = unit.entries();
        while let Some(entry) = cursor.next_dfs()? {
            let depth = usize::try_from(entry.depth()).unwrap_or(0);
            parents.truncate(depth);
            let parent = depth
                .checked_sub(1)
                .and_then(|p| parents.get(p).copied().flatten());
            let here = entry
                .offset()
                .to_debug_info_offset(&unit.header)
                .map(|d| DieRef { file, offset: d.0 });
            let mut container = None;
            let tag = entry.tag();
            if depth == 0 {
                if let Some(here) = here {
                    self.unit_roots.insert(here, unit_idx);
                }
                if let Some(info) = self.units.get_mut(unit_idx) {
                    info.partial = tag == gimli::DW_TAG_partial_unit;
                }
            } else if tag == gimli::DW_TAG_imported_unit {
                let target = entry.attr_value(gimli::DW_AT_import).and_then(to_ref);
                if let (Some(t), Some(info)) = (target, self.units.get_mut(unit_idx)) {
                    info.imports.push(t);
                }
            } else if tag == gimli::DW_TAG_member {
                if let Some(p) = parent {
                    let member = Member {
                        name: name_of(entry),
                        type_ref: entry.attr_value(gimli::DW_AT_type).and_then(to_ref),
                        loc: match entry.attr_value(gimli::DW_AT_data_member_location) {
                            None => MemberLoc::Absent,
                            Some(v) => {
                                if let Some(n) = v.udata_value() {
                                    MemberLoc::Bytes(n)
                                } else if let Some(expr) = v.exprloc_value() {
                                    match eval_member_location(expr, encoding) {
                                        Ok(n) => MemberLoc::Bytes(n),
                                        Err(e) => MemberLoc::Unsupported(e),
                                    }
                                } else {
                                    MemberLoc::Unsupported(format!("location {v:?}"))
                                }
                            }
                        },
                        bit_size: attr_u64(entry.attr_value(gimli::DW_AT_bit_size)),
                        bit_offset: attr_i128(entry.attr_value_raw(gimli::DW_AT_bit_offset))
                            .and_then(|v| i64::try_from(v).ok()),
                        data_bit_offset: attr_u64(entry.attr_value(gimli::DW_AT_data_bit_offset)),
                        byte_size: attr_u64(entry.attr_value(gimli::DW_AT_byte_size)),
                    };
                    if let Some(d) = self.dies.get_mut(&p) {
                        d.members.push(member);
                    }
                }
            } else if tag == gimli::DW_TAG_subrange_type {
                if let Some(d) = parent.and_then(|p| self.dies.get_mut(&p)) {
                    let count = attr_i128(entry.attr_value_raw(gimli::DW_AT_count));
                    let upper = attr_i128(entry.attr_value_raw(gimli::DW_AT_upper_bound));
                    let lower =
                        attr_i128(entry.attr_value_raw(gimli::DW_AT_lower_bound)).unwrap_or(0);
                    let dim = match (count, upper) {
                        (Some(c), _) => u64::try_from(c).ok(),
                        // `[N]` has upper bound N-1; an upper bound of -1 (or the all-ones
                        // value of an unsigned form) means a zero-length array.
                        (None, Some(u)) if u == -1 || u == i128::from(u64::MAX) => Some(0),
                        (None, Some(u)) => u64::try_from(u - lower + 1).ok(),
                        (None, None) => None,
                    };
                    d.dims.push(dim);
                }
            } else if tag == gimli::DW_TAG_variable && depth == 1 {
                let is_decl = matches!(
                    entry.attr_value(gimli::DW_AT_declaration),
                    Some(AttributeValue::Flag(true))
                );
                if !is_decl && name_of(entry).as_deref() == Some("server") {
                    self.server_units.insert(unit_idx);
                }
            } else if let (Some(kind), Some(here)) = (kind_of(tag), here) {
                let die = Die {
                    kind,
                    name: name_of(entry),
                    byte_size: attr_u64(entry.attr_value(gimli::DW_AT_byte_size)),
                    type_ref: entry.attr_value(gimli::DW_AT_type).and_then(to_ref),
                    declaration: matches!(
                        entry.attr_value(gimli::DW_AT_declaration),
                        Some(AttributeValue::Flag(true))
                    ),
                    members: Vec::new(),
                    dims: Vec::new(),
                    unit: unit_idx,
                };
                if let Some(name) = &die.name {
                    if kind == Kind::Struct && !die.declaration {
                        self.structs.entry(name.clone()).or_default().push(here);
                    } else if kind == Kind::Typedef {
                        self.typedefs.entry(name.clone()).or_default().push(here);
                    }
                }
                if matches!(kind, Kind::Struct | Kind::Union | Kind::Array) {
                    container = Some(here);
                }
                self.dies.insert(here, die);
            }
            if entry.has_children() {
                parents.resize(depth, None);
                parents.push(container);
            }
        }
        Ok(())
    }

    pub fn die(&self, r: DieRef) -> Option<&Die> {
        self.dies.get(&r)
    }

    /// Follow typedefs and qualifiers to the underlying type.
    pub fn strip(&self, mut r: DieRef) -> Option<DieRef> {
        for _ in 0..64 {
            let d = self.die(r)?;
            match d.kind {
                Kind::Typedef | Kind::Qualifier => r = d.type_ref?,
                _ => return Some(r),
            }
        }
        None
    }

    /// `sizeof` the type, arrays included (an unbounded dimension counts as 0).
    pub fn size_of(&self, r: DieRef) -> Option<u64> {
        self.size_of_depth(r, 0)
    }

    fn size_of_depth(&self, r: DieRef, depth: u32) -> Option<u64> {
        if depth > 64 {
            return None;
        }
        let d = self.die(r)?;
        match d.kind {
            Kind::Struct | Kind::Union | Kind::Base | Kind::Enum => d.byte_size,
            Kind::Pointer => d
                .byte_size
                .or_else(|| self.units.get(d.unit).map(|u| u64::from(u.address_size))),
            Kind::Typedef | Kind::Qualifier => self.size_of_depth(d.type_ref?, depth + 1),
            Kind::Array => {
                if let Some(b) = d.byte_size {
                    return Some(b);
                }
                let elem = self.size_of_depth(d.type_ref?, depth + 1)?;
                let mut n: u64 = 1;
                for dim in &d.dims {
                    n = n.checked_mul(dim.unwrap_or(0))?;
                }
                elem.checked_mul(n)
            }
            Kind::Subroutine => None,
        }
    }

    /// The struct (or union) name a type resolves to, through typedefs and qualifiers.
    pub fn struct_name(&self, r: DieRef) -> Option<&str> {
        let d = self.die(self.strip(r)?)?;
        matches!(d.kind, Kind::Struct | Kind::Union)
            .then_some(d.name.as_deref())
            .flatten()
    }

    /// The type a pointer type points to (through typedefs and qualifiers on both sides).
    pub fn pointee(&self, r: DieRef) -> Option<DieRef> {
        let p = self.die(self.strip(r)?)?;
        (p.kind == Kind::Pointer).then_some(p.type_ref).flatten()
    }

    /// Definitions that may be called `name`: struct tags first, then typedefs that lead
    /// to a complete struct (directly, or by the tag name of an incomplete one).
    pub fn candidates(&self, name: &str) -> Vec<DieRef> {
        let mut out: Vec<DieRef> = self.structs.get(name).cloned().unwrap_or_default();
        for t in self.typedefs.get(name).into_iter().flatten() {
            let Some(s) = self.strip(*t) else { continue };
            let Some(d) = self.die(s) else { continue };
            if d.kind != Kind::Struct {
                continue;
            }
            if !d.declaration {
                out.push(s);
            } else if let Some(n) = &d.name {
                out.extend(self.structs.get(n).into_iter().flatten().copied());
            }
        }
        let mut seen = HashSet::new();
        out.retain(|r| seen.insert(*r));
        out
    }

    /// True when some typedef leads to a struct tagged `tag`, complete or only declared
    /// (an opaque type such as Redis 8.6's `Entry`, `struct _entry`).
    pub fn has_struct_tag(&self, tag: &str) -> bool {
        self.structs.contains_key(tag)
            || self.typedefs.values().flatten().any(|t| {
                self.strip(*t)
                    .and_then(|s| self.die(s))
                    .is_some_and(|d| d.kind == Kind::Struct && d.name.as_deref() == Some(tag))
            })
    }

    /// Member names of a struct, anonymous members flattened.
    pub fn member_names(&self, r: DieRef) -> HashSet<String> {
        let mut out = HashSet::new();
        self.collect_names(r, &mut out, 0);
        out
    }

    fn collect_names(&self, r: DieRef, out: &mut HashSet<String>, depth: u32) {
        if depth > 16 {
            return;
        }
        let Some(d) = self.die(r) else { return };
        for m in &d.members {
            match &m.name {
                Some(n) => {
                    out.insert(n.clone());
                }
                None => {
                    if let Some(t) = m.type_ref.and_then(|t| self.strip(t)) {
                        self.collect_names(t, out, depth + 1);
                    }
                }
            }
        }
    }

    /// The type of member `name` of struct `r` (anonymous members searched too).
    pub fn member_type(&self, r: DieRef, name: &str) -> Option<DieRef> {
        self.member_type_depth(r, name, 0)
    }

    fn member_type_depth(&self, r: DieRef, name: &str, depth: u32) -> Option<DieRef> {
        if depth > 16 {
            return None;
        }
        let d = self.die(r)?;
        for m in &d.members {
            match &m.name {
                Some(n) if n == name => return m.type_ref,
                Some(_) => {}
                None => {
                    let t = m.type_ref.and_then(|t| self.strip(t));
                    if let Some(found) = t.and_then(|t| self.member_type_depth(t, name, depth + 1))
                    {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    /// The layout of the struct at `r`: its size, and every member (anonymous struct and
    /// union members flattened at their offset). Members that cannot be placed are left
    /// out and described in `warnings`.
    pub fn struct_spec(
        &self,
        r: DieRef,
        label: &str,
        warnings: &mut Vec<String>,
    ) -> Option<StructSpec> {
        let d = self.die(r)?;
        let size = d.byte_size?;
        let mut fields = BTreeMap::new();
        self.add_members(r, 0, label, &mut fields, warnings, 0);
        Some(StructSpec { size, fields })
    }

    fn add_members(
        &self,
        r: DieRef,
        base: u64,
        label: &str,
        fields: &mut BTreeMap<String, FieldSpec>,
        warnings: &mut Vec<String>,
        depth: u32,
    ) {
        if depth > 16 {
            warnings.push(format!("{label}: anonymous members nested too deeply"));
            return;
        }
        let Some(d) = self.die(r) else { return };
        for m in &d.members {
            let what = m.name.as_deref().unwrap_or("(anonymous)");
            let loc = match &m.loc {
                MemberLoc::Absent => 0,
                MemberLoc::Bytes(n) => *n,
                MemberLoc::Unsupported(why) => {
                    warnings.push(format!("{label}.{what} left out: {why}"));
                    continue;
                }
            };
            let Some(start) = base.checked_add(loc) else {
                warnings.push(format!("{label}.{what} left out: offset overflows"));
                continue;
            };
            if let Some(bit_size) = m.bit_size {
                let Some(name) = &m.name else { continue }; // unnamed padding bit-field
                match self.bit_position(m, start, bit_size) {
                    Some(bit_offset) => {
                        let Ok(bit_size) = u32::try_from(bit_size) else {
                            warnings.push(format!("{label}.{name} left out: bit size {bit_size}"));
                            continue;
                        };
                        fields.entry(name.clone()).or_insert(FieldSpec::Bits {
                            bit_offset,
                            bit_size,
                        });
                    }
                    None => warnings.push(format!(
                        "{label}.{name} left out: bit-field position cannot be computed"
                    )),
                }
                continue;
            }
            match &m.name {
                None => {
                    let inner = m.type_ref.and_then(|t| self.strip(t));
                    match inner.and_then(|t| self.die(t).map(|d| (t, d.kind))) {
                        Some((t, Kind::Struct | Kind::Union)) => {
                            self.add_members(t, start, label, fields, warnings, depth + 1)
                        }
                        _ => warnings.push(format!(
                            "{label}: an anonymous member at offset {start} is not a struct or union"
                        )),
                    }
                }
                Some(name) => match m.type_ref.and_then(|t| self.size_of(t)) {
                    Some(size) => {
                        fields.entry(name.clone()).or_insert(FieldSpec::Bytes {
                            offset: start,
                            size,
                        });
                    }
                    None => warnings.push(format!("{label}.{name} left out: unknown size")),
                },
            }
        }
    }

    /// Little-endian bit position of a bit-field member from the outermost struct's start.
    fn bit_position(&self, m: &Member, start: u64, bit_size: u64) -> Option<u64> {
        if let Some(dbo) = m.data_bit_offset {
            // DWARF 4/5: from the start of the containing struct; `start` is only the
            // offset of an enclosing anonymous member (no data_member_location here).
            return start.checked_mul(8)?.checked_add(dbo);
        }
        match m.bit_offset {
            Some(msb) => {
                let storage = match m.byte_size {
                    Some(b) => b,
                    None => self.size_of(m.type_ref?)?,
                };
                legacy_bit_offset(start, storage, msb, bit_size)
            }
            None => start.checked_mul(8),
        }
    }
}

/// DWARF ≤ 4 `DW_AT_bit_offset` (counted from the most significant bit of a storage unit
/// of `byte_size` bytes at byte `loc`) to a little-endian bit position from the struct's
/// start: `loc*8 + byte_size*8 - bit_offset - bit_size`.
pub fn legacy_bit_offset(loc: u64, byte_size: u64, bit_offset: i64, bit_size: u64) -> Option<u64> {
    let v = i128::from(loc) * 8 + i128::from(byte_size) * 8
        - i128::from(bit_offset)
        - i128::from(bit_size);
    u64::try_from(v).ok()
}

/// Section bytes for gimli: borrowed when stored plainly, owned when decompressed.
pub(crate) fn section_data<'d>(
    obj: &object::File<'d>,
    id: gimli::SectionId,
) -> Result<Cow<'d, [u8]>, object::Error> {
    use object::{Object, ObjectSection};
    match obj.section_by_name(id.name()) {
        Some(s) => s.uncompressed_data(),
        None => Ok(Cow::Borrowed(&[][..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_bit_offsets() {
        // robj: unsigned type:4, encoding:4, lru:24 in a 4-byte unit at 0 (GCC -gdwarf-4).
        assert_eq!(legacy_bit_offset(0, 4, 28, 4), Some(0));
        assert_eq!(legacy_bit_offset(0, 4, 24, 4), Some(4));
        assert_eq!(legacy_bit_offset(0, 4, 0, 24), Some(8));
        // Valkey serverObject.hasexpire:1 in the unit at byte 4.
        assert_eq!(legacy_bit_offset(4, 4, 31, 1), Some(32));
        // Nonsense gives None rather than wrapping.
        assert_eq!(legacy_bit_offset(0, 1, 9, 4), None);
    }
}
