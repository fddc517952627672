use std::time::Duration;

use super::*;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("perfsink-spool-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

const EVERY: SpoolFsync = SpoolFsync::Interval(Duration::from_millis(1000));

fn open(dir: &Path, cap: u64) -> Opened {
    Spool::open(dir, cap, EVERY).unwrap()
}

fn payloads(o: &Opened) -> Vec<Vec<u8>> {
    o.pending
        .iter()
        .map(|p| o.spool.read(p.loc).unwrap())
        .collect()
}

fn wal_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn unsettled_records_are_replayed_oldest_first_and_settled_ones_are_not() {
    let dir = tmpdir("replay");
    let mut o = open(&dir, 1 << 30);
    assert!(o.pending.is_empty());
    let s = &mut o.spool;
    let a = s.append(ChunkKind::User, 1, b"a v=1 1\n").unwrap();
    let b = s.append(ChunkKind::SelfMetrics, 1, b"b v=1 1\n").unwrap();
    let c = s.append(ChunkKind::User, 2, b"c v=1 1\nc v=2 2\n").unwrap();
    assert_eq!(s.user_lines(), 3);
    s.ack(b, 1, ChunkKind::SelfMetrics).unwrap();
    assert_eq!(s.read(c).unwrap(), b"c v=1 1\nc v=2 2\n");
    // A process dying here (no close) leaves `a` and `c`.
    drop(o);
    let mut o = open(&dir, 1 << 30);
    assert_eq!(payloads(&o), [&b"a v=1 1\n"[..], b"c v=1 1\nc v=2 2\n"]);
    assert_eq!(o.spool.user_lines(), 3);
    assert_eq!(o.pending[1].lines, 2);
    let (pa, pc) = (o.pending[0], o.pending[1]);
    assert_eq!((pa.loc.id, pc.loc.id), (a.id, c.id));
    o.spool.ack(pa.loc, 1, ChunkKind::User).unwrap();
    o.spool.ack(pc.loc, 2, ChunkKind::User).unwrap();
    // The old segment is settled and gone; the new active one is empty.
    assert_eq!(o.spool.user_lines(), 0);
    assert_eq!(wal_files(&dir).len(), 1);
    o.spool.close().unwrap();
    assert!(wal_files(&dir).is_empty());
    drop(o);
    let o = open(&dir, 1 << 30);
    assert!(o.pending.is_empty());
    assert_eq!(o.damage, Damage::default());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_settled_active_segment_is_emptied_not_grown() {
    let dir = tmpdir("empty");
    let mut o = open(&dir, 1 << 30);
    for i in 0..100u64 {
        let line = format!("m v={i} {i}\n");
        let loc = o.spool.append(ChunkKind::User, 1, line.as_bytes()).unwrap();
        o.spool.ack(loc, 1, ChunkKind::User).unwrap();
    }
    assert_eq!(o.spool.bytes(), 0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_second_process_is_refused_the_directory() {
    let dir = tmpdir("lock");
    let first = open(&dir, 1 << 30);
    // Another open file description, as another process has: the lock is per description.
    let e = Spool::open(&dir, 1 << 30, EVERY).err().expect("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("in use") && msg.contains(&std::process::id().to_string()),
        "{msg}"
    );
    drop(first);
    open(&dir, 1 << 30);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_cap_refuses_appends_and_names_itself() {
    let dir = tmpdir("cap");
    // A record of 8 bytes takes 44: the first is taken below the cap, the second is not.
    let mut o = open(&dir, 40);
    o.spool.append(ChunkKind::User, 1, b"a v=1 1\n").unwrap();
    let e = o
        .spool
        .append(ChunkKind::User, 1, b"b v=1 1\n")
        .unwrap_err();
    assert!(e.to_string().contains("PERFSINK_SPOOL_MAX_BYTES=40"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn damage_costs_the_damaged_record_once() {
    let dir = tmpdir("damage");
    let mut o = open(&dir, 1 << 30);
    let a = o.spool.append(ChunkKind::User, 1, b"a v=1 1\n").unwrap();
    let b = o
        .spool
        .append(ChunkKind::User, 3, b"b v=1 1\nb v=2 2\nb v=3 3\n")
        .unwrap();
    o.spool.append(ChunkKind::User, 1, b"c v=1 1\n").unwrap();
    drop(o);
    let seg = dir.join(segment_name(a.seg));
    let mut bytes = fs::read(&seg).unwrap();
    // A flipped bit in b's payload, and a torn record at the end (a machine crash mid-append).
    bytes[b.at as usize + HEADER + 3] ^= 0x04;
    bytes.extend_from_slice(
        &record::encode(Kind::Lines(ChunkKind::User), 99, 5, b"d v=1 1\n")[..20],
    );
    fs::write(&seg, &bytes).unwrap();
    let o = open(&dir, 1 << 30);
    assert_eq!(payloads(&o), [&b"a v=1 1\n"[..], b"c v=1 1\n"]);
    assert_eq!(
        o.damage,
        Damage {
            records: 2,
            user_lines: 3,
            unknown_bytes: 20
        }
    );
    drop(o);
    // Counted once: covered by padding, the cut end truncated.
    let o = open(&dir, 1 << 30);
    assert_eq!(o.damage, Damage::default());
    assert_eq!(o.pending.len(), 2);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn spool_files_of_the_earlier_format_are_taken_over() {
    let dir = tmpdir("legacy");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("0000000000000007.user.2.lp"),
        b"b v=1 1\nb v=2 2\n",
    )
    .unwrap();
    fs::write(dir.join("0000000000000003.user.1.lp"), b"a v=1 1\n").unwrap();
    fs::write(dir.join("0000000000000009.self.1.lp"), b"s v=1 1\n").unwrap();
    let o = open(&dir, 1 << 30);
    assert_eq!(
        payloads(&o),
        [&b"a v=1 1\n"[..], b"b v=1 1\nb v=2 2\n", b"s v=1 1\n"]
    );
    assert_eq!(o.spool.user_lines(), 3);
    assert_eq!(o.pending[2].kind, ChunkKind::SelfMetrics);
    assert!(!fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".lp")));
    assert_eq!(pending_user_lines(&dir).unwrap(), 3);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn segments_roll_and_settled_ones_are_deleted() {
    let dir = tmpdir("roll");
    // Segments of 1 MiB (an eighth of the cap, at least 1 MiB): 4 records of 400 KiB make two.
    let mut o = open(&dir, 8 << 20);
    let big = vec![b'x'; 400 << 10];
    let locs: Vec<_> = (0..4)
        .map(|_| o.spool.append(ChunkKind::User, 1, &big).unwrap())
        .collect();
    assert_eq!(wal_files(&dir).len(), 2);
    assert_ne!(locs[0].seg, locs[3].seg);
    for l in &locs[..3] {
        o.spool.ack(*l, 1, ChunkKind::User).unwrap();
    }
    assert_eq!(wal_files(&dir).len(), 1);
    assert_eq!(o.spool.user_lines(), 1);
    let _ = fs::remove_dir_all(&dir);
}
