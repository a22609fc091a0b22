//! [`Text`]: the text of one frame, shared by reference count. Results and stream items
//! are decoded from it later, in their caller's task, without a copy.

use std::ops::Deref;

use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The text of one frame: UTF-8, cheap to clone (reference-counted).
///
/// Storage only: the bytes are held as tungstenite's `Utf8Bytes` because that is what a
/// WebSocket frame arrives as (so a door hands it over without a copy or a second UTF-8
/// check, which `unsafe_code = "forbid"` leaves no other way to skip). No layer above the
/// codec sees that type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Text(Utf8Bytes);

impl Text {
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl From<Utf8Bytes> for Text {
    fn from(text: Utf8Bytes) -> Self {
        Text(text)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text(text.into())
    }
}

impl From<&'static str> for Text {
    fn from(text: &'static str) -> Self {
        Text(text.into())
    }
}

impl TryFrom<bytes::Bytes> for Text {
    type Error = std::str::Utf8Error;
    /// Checks that the bytes are UTF-8 (no copy).
    fn try_from(bytes: bytes::Bytes) -> Result<Self, Self::Error> {
        Utf8Bytes::try_from(bytes).map(Text)
    }
}
