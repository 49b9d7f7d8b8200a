//! Redis Cluster's key slots: which of the 16384 slots a key name belongs to.

/// Slots of a cluster.
pub const SLOTS: u32 = 16384;

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the first
/// `{` and the next `}`, when not empty) or of the whole key, modulo [`SLOTS`].
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let after = key.get(open + 1..)?;
        let close = after.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| after.get(..close)).flatten()
    });
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    crc.checksum(tagged.unwrap_or(key)) % SLOTS as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_hash_tags() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }
}
