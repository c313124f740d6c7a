//! `normalize`: the cache key and the text embedded.

use vigil_embed::normalize;

#[test]
fn table() {
    let cases = [
        ("", ""),
        ("  a \t b\n", "a b"),
        ("Failed password for root from 10.0.0.1 port 22 ssh2", "Failed password for root from <ip> port <num> ssh2"),
        ("conn 192.168.1.20:443 -> 8.8.8.8:53", "conn <ip>:<num> -> <ip>:<num>"),
        ("from fe80::1%eth0 and 2001:db8::ff00:42:8329", "from <ip>%eth0 and <ip>"),
        ("::ffff:10.1.2.3 ok", "<ip> ok"),
        ("1:2:3:4:5:6:7:8", "<ip>"),
        ("at 07:06:35 UTC", "at <num>:<num>:<num> UTC"),
        ("std::vector<int>", "std::vector<int>"),
        ("id 550e8400-e29b-41d4-a716-446655440000.", "id <uuid>."),
        ("sha 9f86d081884c7d659a2feaa0c55ad015 done", "sha <hex> done"),
        ("ptr 0x7ffe12 and 0XFF", "ptr <hex> and <hex>"),
        ("deadbeef CAFEBABE1", "<hex> <hex>"),
        ("sshd[1234]: x=1.5", "sshd[<num>]: x=<num>.<num>"),
        ("ts 1700000000", "ts <num>"),
        ("sha256 md5 web01 log4j x86_64", "sha256 md5 web01 log4j x86_64"),
        ("session123456 user-42", "session<num> user-<num>"),
        ("oid 1.3.6.1.4.1", "oid <num>.<num>.<num>.<num>.<num>.<num>"),
        ("Accepted publickey", "Accepted publickey"),
        ("decade abcdefgh", "decade abcdefgh"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize(input), want, "normalize({input:?})");
    }
}

#[test]
fn deterministic_and_idempotent() {
    let s = "GET /api/v1/users/8812 from 10.2.3.4 took 35ms req=3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let once = normalize(s);
    assert_eq!(once, normalize(s));
    assert_eq!(once, normalize(&once));
}
