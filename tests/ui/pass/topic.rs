//! A topic declared in a trait: the client subscribes, handlers and other code publish.

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Note {
    pub text: String,
}

#[wirecall::service]
pub trait Board {
    /// Post a note to a board.
    async fn post(board: u32, text: String) -> u64;
    /// Every note posted to `board`.
    #[wirecall(topic)]
    async fn notes(board: u32) -> Note;
}

struct Impl;

impl Board for Impl {
    async fn post(&self, ctx: wirecall::Context, board: u32, text: String) -> Result<u64, wirecall::Fault> {
        let at = BoardTopics::new(ctx.hub())
            .notes(board)
            .publish(&Note { text })
            .await
            .map_err(wirecall::Fault::internal)?;
        Ok(at.offset)
    }
}

async fn listen(client: BoardClient) -> Result<(), wirecall::Error> {
    let mut notes: wirecall::Subscription<Note> = client.notes(7).await?;
    while let Some(note) = notes.next().await {
        match note {
            Ok(note) => println!("{} at {:?}", note.text, notes.position()),
            Err(wirecall::Error::Gap(gap)) => println!("missed some: {gap}"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn main() {
    let _router = Impl.into_router();
    let _ = listen;
}
