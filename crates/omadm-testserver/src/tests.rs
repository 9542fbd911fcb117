//! Tests of what the server prints: alerts with their source and result, and GET results
//! (small ones whole, large ones by size).

use super::*;

#[test]
fn alerts_are_shown_with_their_source_and_result() {
    let cases = [
        (json!([]), "no alert"),
        (
            json!([{"AlertType": "urn:oma:at:dm:2.0:BootstrapComplete"}]),
            "urn:oma:at:dm:2.0:BootstrapComplete",
        ),
        (
            json!([{"AlertType": "urn:oma:at:scomo:1.0:OperationComplete",
                    "SourceURI": "urn:oma:mo:oma-scomo:1.0/SCOMO/Download/p1/Operations/DownloadInstall",
                    "Data": {"ResultCode": 1200}},
                   {"AlertType": "x"}]),
            "urn:oma:at:scomo:1.0:OperationComplete from urn:oma:mo:oma-scomo:1.0/SCOMO/Download/p1/Operations/DownloadInstall result 1200; x",
        ),
    ];
    for (alerts, shown) in cases {
        assert_eq!(alerts_shown(&alerts), shown, "{alerts}");
    }
}

#[test]
fn small_get_results_are_shown_whole_and_large_ones_by_size() {
    let part = |body: Vec<u8>| packages::Part {
        index: 0,
        content_type: "application/dmmo+json".into(),
        body,
    };
    let small: Result<_, ()> = Ok((
        packages::Package3::default(),
        vec![part(b"[{\"a\":1}]".to_vec())],
    ));
    assert_eq!(
        parts_shown(&small),
        "\n  GET result (application/dmmo+json): [{\"a\":1}]"
    );
    let large: Result<_, ()> = Ok((
        packages::Package3::default(),
        vec![part(vec![b' '; SHOWN_WHOLE + 1])],
    ));
    assert_eq!(
        parts_shown(&large),
        format!(
            "\n  GET result (application/dmmo+json): {} bytes",
            SHOWN_WHOLE + 1
        )
    );
    assert_eq!(parts_shown::<()>(&Err(())), "");
}
