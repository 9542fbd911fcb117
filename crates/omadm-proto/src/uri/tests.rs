//! Tests of the ClientURI parser and ServerURI substitution: the TS's forms, escapes and
//! tricks refused, names written back as they were read.

#[test]
fn redacted_urls_keep_host_and_path_only() {
    let table = [
        ("https://dms.example/dm?token=abc", "https://dms.example/dm"),
        (
            "https://user:pw@dms.example:8443/a/b?x=1#frag",
            "https://dms.example:8443/a/b",
        ),
        (
            "http://127.0.0.1:9/repo/[DevID]",
            "http://127.0.0.1:9/repo/[DevID]",
        ),
        ("not a url?secret=1", "not a url"),
        ("user:pw@host/path?q", "host/path"),
    ];
    for (url, want) in table {
        assert_eq!(redact(url), want, "{url}");
    }
}

use super::*;

fn parse(s: &str) -> ClientUri {
    ClientUri::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn forms_of_the_ts() {
    let u = parse("urn:oma:mo:oma-dm-devinfo:1.2//DevID");
    assert_eq!(
        (u.instance.clone(), u.path.clone()),
        (InstanceSel::Only, vec![Segment::Name("DevID".into())])
    );
    let u = parse("urn:oma:mo:oma-mo:1.0/miid1/");
    assert_eq!(
        (u.instance.clone(), u.path.len()),
        (InstanceSel::Miid("miid1".into()), 0)
    );
    let u = parse("urn:oma:mo:oma-scomo:1.0//Inventory/Deployed/*/ID");
    assert!(u.has_wildcard());
    let u = parse("urn:oma:mo:oma-dcmo:1.0/(x)/Enabled?nv=(x)/Property:Camera");
    assert_eq!(u.instance, InstanceSel::XName('x'));
    assert_eq!(
        u.nv,
        [NodeValue {
            xname: 'x',
            path: vec!["Property".into()],
            value: "Camera".into()
        }]
    );
    let u = parse(
        "urn:oma:mo:moid:1.0/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2&lv=2&cv=abc&vendor=1",
    );
    assert_eq!(u.nv.len(), 2);
    assert_eq!((u.level, u.cv.as_deref()), (Some(2), Some("abc")));
    assert_eq!(u.nv_for('y').next().unwrap().value, "12.2");
    // §14 #9: no "urn:".
    assert_eq!(
        parse("oma:mo:oma-dm-devinfo:1.0//").moid,
        "urn:oma:mo:oma-dm-devinfo:1.0"
    );
    // nv values are percent-decoded and may hold ':' and '/'.
    let u = parse("urn:x:1.0/(a)/?nv=(a)/Url:https%3A//x/y:z");
    assert_eq!(u.nv[0].value, "https://x/y:z");
    // A trailing slash after a name is tolerated.
    assert_eq!(parse("urn:x:1.0/i/a/b/").path.len(), 2);
    // The DACMO's <MOID> nodes (TS §12.3): ':' written %3A, and written back so.
    let dacmo = "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/urn%3Aoma%3Amo%3Amoid%3A1.0/left";
    let u = parse(dacmo);
    assert_eq!(
        u.path,
        [
            Segment::Name("urn:oma:mo:moid:1.0".into()),
            Segment::Name("left".into())
        ]
    );
    assert_eq!(u.to_string(), dacmo);
    assert_eq!(parse(&dacmo.replace("%3A", "%3a")), u);
    // Every name has one spelling: '%' itself is escaped, so "a%3Ab" and "a:b" differ.
    let odd = parse("urn:x:1.0/i/a%253Ab/x%20y");
    assert_eq!(
        odd.path,
        [Segment::Name("a%3Ab".into()), Segment::Name("x y".into())]
    );
    assert_eq!(odd.to_string(), "urn:x:1.0/i/a%253Ab/x%20y");
    assert_eq!(
        concrete("urn:x:1.0", "i", "a%3Ab/x y"),
        "urn:x:1.0/i/a%253Ab/x%20y"
    );
    assert_eq!(
        concrete(
            "urn:oma:mo:oma-dm-dacmo:1.0",
            "DacMO",
            "urn:oma:mo:moid:1.0/left"
        ),
        dacmo
    );
}

#[test]
fn display_gives_the_address_without_query() {
    for s in [
        "urn:x:1.0/i/",
        "urn:x:1.0//",
        "urn:x:1.0/*/a/*/b",
        "urn:x:1.0/(x)/a/(y)",
    ] {
        assert_eq!(parse(&format!("{s}?lv=1&cv=z")).to_string(), s);
    }
    assert_eq!(concrete("urn:x:1.0", "i", ""), "urn:x:1.0/i/");
    assert_eq!(concrete("urn:x:1.0", "i", "a/b"), "urn:x:1.0/i/a/b");
}

#[test]
fn escapes_and_tricks_are_refused() {
    let bad = [
        "",
        "urn:x:1.0",
        "/miid/",
        "urn:x:1.0/miid",
        "urn:x:1.0/miid/a//b",
        "urn:x:1.0/miid//",
        "urn:x:1.0/miid/..",
        "urn:x:1.0/../",
        "urn:x:1.0/miid/./a",
        "urn:x:1.0/miid/a%2Fb",
        "urn:x:1.0/miid/a:b",
        "urn:x:1.0/miid/a%3Ab%2F",
        "urn:x:1.0/miid/a%2e",
        "urn:x:1.0/miid/%2E%2E",
        "urn:x:1.0/miid/a%0Ab",
        "urn:x:1.0/miid/a%7F",
        "urn:x:1.0/miid/%C3",
        "urn:x:1.0/mi%3Aid/",
        "urn:x:1.0/miid/%3",
        "urn:x:1.0/miid/%3G",
        "urn:x:1.0/mi%69d/",
        "urn:x:1.0/miid/a b",
        "urn:x:1.0/miid/(xy)",
        "urn:x:1.0/(1)/",
        "urn:x:1.0/(x)/(x)",
        "urn:x:1.0/(x)/?nv=(y)/a:b",
        "urn:x:1.0/(x)/?nv=(x):b",
        "urn:x:1.0/(x)/?nv=(x)/a",
        "urn:x:1.0/(x)/?nv=x/a:b",
        "urn:x:1.0/(x)/?nv=(x)/../a:b",
        "urn:x:1.0/(x)/?nv=(x)/a:%ZZ",
        "urn:x:1.0/i/?lv=0",
        "urn:x:1.0/i/?lv=-1",
        "urn:x:1.0/i/?lv=two",
        "urn:x:1.0/i/?lv=1&lv=2",
        "urn:x:1.0/i/?cv=a&cv=b",
        "urn x/i/",
        "urn:x:1.0#frag/i/",
    ];
    for s in bad {
        assert!(ClientUri::parse(s).is_err(), "accepted {s:?}");
    }
    assert!(ClientUri::parse(&format!("urn:x:1.0/i/{}", "a".repeat(5000))).is_err());
}

#[test]
fn server_uri_substitution() {
    let v = ServerUriValues {
        dev_id: Some("IMEI:493005100592800".into()),
        ..Default::default()
    };
    assert_eq!(
        substitute("https://DMcontent.DMserver.operator.com/[DevID]", &v),
        "https://DMcontent.DMserver.operator.com/IMEI%3A493005100592800"
    );
    assert_eq!(
        substitute(
            "https://prov.dmserver.com/Settings/[MCC]/[MNC]/MMS?sp=[SPName]&c=[CMCC][CMNC]",
            &v
        ),
        "https://prov.dmserver.com/Settings/-1/-1/MMS?sp=-1&c=-1-1"
    );
    let v = ServerUriValues {
        sp_name: Some("Télé Com/1".into()),
        mcc: Some("262".into()),
        ..Default::default()
    };
    assert_eq!(
        substitute("https://x/[SPName]/[MCC]/[DevID]", &v),
        "https://x/T%C3%A9l%C3%A9%20Com%2F1/262/-1"
    );
    // IPv6 literals and unknown names stay.
    assert_eq!(
        substitute("https://[::1]:8443/[Other]/[DevID", &v),
        "https://[::1]:8443/[Other]/[DevID"
    );
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = ClientUri::parse(&s);
    }

    #[test]
    fn display_parses_back(
        moid in "urn:[a-z]{1,6}:[0-9]\\.[0-9]",
        inst in "[A-Za-z0-9_~-]{1,6}|\\*|\\(x\\)|",
        segs in proptest::collection::vec("[A-Za-z0-9_~-]{1,6}|\\*|\\(y\\)", 0..4),
    ) {
        let mut s = format!("{moid}/{inst}/{}", segs.join("/"));
        if segs.iter().filter(|x| *x == "(y)").count() > 1 { return Ok(()); }
        if segs.is_empty() { s = format!("{moid}/{inst}/"); }
        let u = ClientUri::parse(&s).unwrap();
        proptest::prop_assert_eq!(ClientUri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn any_stored_name_is_addressed_by_its_segment(name in "[^/\\p{Cc}]{1,12}") {
        // The store's own rule for names (tree::is_node_name).
        if name == "." || name == ".." { return Ok(()); }
        let uri = format!("urn:x:1.0/i/{}", segment(&name));
        let u = ClientUri::parse(&uri).unwrap();
        proptest::prop_assert_eq!(&u.path, &vec![Segment::Name(name.clone())]);
        proptest::prop_assert_eq!(u.to_string(), uri);
    }
}
