mod common;
use common::*;
use std::path::Path;
use std::time::Instant;

#[test]
#[ignore]
fn harness_self_check() {
    let t = Instant::now();
    let binary = find_in_path(DEFAULT_SERVER);
    let server = RedisServer::start(&binary, &["--activerehashing", "no"]);
    eprintln!("started in {:?}", t.elapsed());
    let dataset = fill_dataset(&server);
    eprintln!("filled in {:?}; census {:#?}", t.elapsed(), dataset.census);
    let mut conn = server.conn();
    let truth = record_truth(&mut conn, dataset);
    eprintln!("truth in {:?}: digest {} sizes {:?} expires {:?} rehashing {:?} ttl keys {}", t.elapsed(), truth.digest, truth.dbsizes, truth.expires, truth.rehashing, truth.pexpiretimes.len());
    for db in truth.dbsizes.keys() { eprintln!("db {db} tables {:?}", main_dict_tables(&mut conn, *db)); }
    let out = tempfile::tempdir().unwrap();
    let core = gcore(&server, out.path());
    eprintln!("gcore in {:?}: {} bytes", t.elapsed(), std::fs::metadata(&core).unwrap().len());
    // the server is still fine and still rehashing after gcore
    assert_eq!(digest(&mut conn), truth.digest);
    assert_eq!(main_dict_tables(&mut conn, 3).len(), 2);
    let _: () = redis::cmd("SAVE").query(&mut conn).unwrap();
    let rdb = server.dir().join("dump.rdb");
    let (k, e) = check_rdb(&find_in_path("redis-check-rdb"), &rdb);
    eprintln!("check-rdb: {k} keys {e} expires");
    assert_eq!(k, truth.dbsizes.values().sum::<u64>());
    assert_eq!(e, truth.expires.values().sum::<u64>());
    assert_restores_exactly(&binary, &rdb, &truth);
    eprintln!("restored in {:?}", t.elapsed());
    let _ = Path::new("x");
}
