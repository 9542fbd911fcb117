//! Connectionless WAP Push (WAP-230 WSP, TS App. E.1): how a DM Notification (Package#0)
//! travels over SMS and UDP port 2948. [`unwrap`] finds the Package#0 in a datagram, bare
//! or pushed; [`wrap`] makes a push of one.
//!
//! ```
//! use omadm_proto::wap::{unwrap, wrap};
//! let package0 = [0x20, 0x80, 0x00]; // any Package#0 bytes
//! let push = wrap(&package0, 1);
//! // TID 1, PDU type Push, 3 bytes of headers: the DM notification content type
//! // (0x58) and X-WAP-Application-Id 0x07 (syncml.dm), as short integers.
//! assert_eq!(&push[..6], &[0x01, 0x06, 0x03, 0xD8, 0xAF, 0x87]);
//! assert_eq!(unwrap(&push), Ok(&package0[..]));
//! assert_eq!(unwrap(&package0), Ok(&package0[..]), "a bare Package#0 passes as is");
//! ```

/// Why a datagram holds no DM Notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WapError {
    /// A WAP Push whose framing is broken.
    #[error("malformed WAP Push: {0}")]
    Malformed(String),
    /// A WAP Push for another application or content type.
    #[error("WAP Push for another application: {0}")]
    NotForUs(String),
}

/// WSP PDU type of a Push (WAP-230 §8.2.1).
const WSP_PUSH: u8 = 0x06;
/// Content type `application/vnd.syncml.dm.notification` as a WSP short integer
/// (well-known value 0x58, TS App. E.1).
const CT_DM_NOTIFICATION: u8 = 0x58 | 0x80;
/// The X-WAP-Application-Id header field (0x2F) as a short integer.
const HDR_APPLICATION_ID: u8 = 0x2F | 0x80;
/// Application ID 0x07 (`x-wap-application:syncml.dm`) as a short integer.
const APP_SYNCML_DM: u8 = 0x07 | 0x80;

/// The Package#0 inside a datagram: the datagram itself, or the body of a connectionless
/// WAP Push (WSP) whose content type is `application/vnd.syncml.dm.notification` and
/// whose application ID, if given, is 0x07 (TS App. E.1).
pub fn unwrap(datagram: &[u8]) -> Result<&[u8], WapError> {
    // A bare Package#0 has VER=2 in the high nibble and reserved bits zero, so its second
    // byte is 0x00 or 0x80; a WSP push has the PDU type 0x06 there.
    if datagram.get(1) != Some(&WSP_PUSH) {
        return Ok(datagram);
    }
    let bad = |what: &str| WapError::Malformed(what.to_owned());
    // TID, PDU type, HeadersLen (uintvar), then Content-Type and headers, then the body.
    let mut at = 2;
    let mut headers_len: usize = 0;
    loop {
        let b = *datagram
            .get(at)
            .ok_or_else(|| bad("truncated header length"))?;
        at += 1;
        headers_len = headers_len
            .checked_mul(128)
            .ok_or_else(|| bad("header length overflows"))?
            | usize::from(b & 0x7F);
        if b & 0x80 == 0 {
            break;
        }
        if at > 7 {
            return Err(bad("header length too long"));
        }
    }
    let headers = datagram
        .get(at..at + headers_len)
        .ok_or_else(|| bad("headers past the end"))?;
    let body = &datagram[at + headers_len..];
    let (&ct, rest) = headers
        .split_first()
        .ok_or_else(|| bad("no content type"))?;
    let text_ct = b"application/vnd.syncml.dm.notification\0";
    let rest = if ct == CT_DM_NOTIFICATION {
        rest
    } else if headers.starts_with(text_ct) {
        &headers[text_ct.len()..]
    } else {
        return Err(WapError::NotForUs(format!("content type {ct:#04x}")));
    };
    // X-WAP-Application-Id, if present, must be the DM application.
    if let Some(i) = rest.iter().position(|&b| b == HDR_APPLICATION_ID)
        && rest.get(i + 1) != Some(&APP_SYNCML_DM)
    {
        return Err(WapError::NotForUs(format!(
            "application id {:?}",
            rest.get(i + 1)
        )));
    }
    Ok(body)
}

/// Wraps a Package#0 in a connectionless WAP Push (for test servers and bridges).
pub fn wrap(package0: &[u8], tid: u8) -> Vec<u8> {
    let headers = [CT_DM_NOTIFICATION, HDR_APPLICATION_ID, APP_SYNCML_DM];
    let mut out = vec![tid, WSP_PUSH, headers.len() as u8];
    out.extend_from_slice(&headers);
    out.extend_from_slice(package0);
    out
}
