//! Unit tests of `verify`.

use super::*;

#[test]
fn samples_are_distinct_sorted_and_repeatable() {
    let a = choose_sample(100, 1000, 7);
    assert_eq!(a.len(), 100);
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert!(a.iter().all(|&i| i < 1000));
    assert_eq!(a, choose_sample(100, 1000, 7));
    assert_ne!(a, choose_sample(100, 1000, 8));
    assert_eq!(choose_sample(10, 5, 1), vec![0, 1, 2, 3, 4]);
    assert!(choose_sample(0, 5, 1).is_empty());
    // Roughly uniform: each half gets a fair share.
    let b = choose_sample(5000, 100_000, 3);
    let low = b.iter().filter(|&&i| i < 50_000).count();
    assert!((2200..2800).contains(&low), "{low}");
}

#[test]
fn sizes_print_humanly() {
    assert_eq!(human_bytes(12), "12 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(
        default_report_path(Path::new("/x/d.rdb")),
        PathBuf::from("/x/d.rdb.report.json")
    );
}
