//! One user's todo list: the pure model the user's Durable Object keeps in its
//! storage, and the commands the Worker sends it.
//!
//! Ids are decimal strings of a per-list counter that starts at the creation
//! time in milliseconds (like the original's `Date.now()` ids) and never goes
//! back, so they are unique within a list and sort by creation even when many
//! todos are added in the same millisecond.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Longest todo text, in characters (after trimming).
pub const MAX_TEXT_CHARS: usize = 500;
/// Most todos one user may have.
pub const MAX_TODOS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Todo {
    pub id: String,
    pub text: String,
    pub completed: bool,
}

/// What the Durable Object stores under one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoList {
    /// The highest id handed out so far (0 before the first todo).
    #[serde(default, rename = "lastId")]
    last_id: u64,
    #[serde(default)]
    todos: Vec<Todo>,
}

/// Why a change to the list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// The text is empty (after trimming) or longer than [`MAX_TEXT_CHARS`].
    InvalidText(TextError),
    /// The list already holds [`MAX_TODOS`] todos.
    Full,
    /// No todo has this id.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Empty,
    TooLong,
}

/// The text as it is stored: trimmed, non-empty, at most [`MAX_TEXT_CHARS`] characters.
pub fn clean_text(text: &str) -> Result<&str, TextError> {
    let text = text.trim();
    if text.is_empty() {
        Err(TextError::Empty)
    } else if text.chars().count() > MAX_TEXT_CHARS {
        Err(TextError::TooLong)
    } else {
        Ok(text)
    }
}

/// Incomplete first, then by id (numerically for our decimal ids: shorter is smaller).
fn order(a: &Todo, b: &Todo) -> Ordering {
    a.completed.cmp(&b.completed).then_with(|| a.id.len().cmp(&b.id.len())).then_with(|| a.id.cmp(&b.id))
}

impl TodoList {
    pub fn len(&self) -> usize {
        self.todos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.todos.is_empty()
    }

    /// The todos in the order every response uses.
    pub fn sorted(&self) -> Vec<Todo> {
        let mut todos = self.todos.clone();
        todos.sort_by(order);
        todos
    }

    /// Adds a todo created at `now_ms`; returns its id.
    pub fn add(&mut self, text: &str, now_ms: u64) -> Result<String, ListError> {
        let text = clean_text(text).map_err(ListError::InvalidText)?;
        if self.todos.len() >= MAX_TODOS {
            return Err(ListError::Full);
        }
        let id = now_ms.max(self.last_id.saturating_add(1));
        self.last_id = id;
        let id = id.to_string();
        self.todos.push(Todo { id: id.clone(), text: text.to_owned(), completed: false });
        Ok(id)
    }

    pub fn set_completed(&mut self, id: &str, completed: bool) -> Result<(), ListError> {
        let todo = self.todos.iter_mut().find(|t| t.id == id).ok_or(ListError::NotFound)?;
        todo.completed = completed;
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> Result<(), ListError> {
        let at = self.todos.iter().position(|t| t.id == id).ok_or(ListError::NotFound)?;
        self.todos.remove(at);
        Ok(())
    }
}

/// What the Worker asks the user's Durable Object to do, after it has
/// authenticated the caller, checked the scope and validated the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    List,
    Add { text: String },
    SetCompleted { id: String, completed: bool },
    Delete { id: String },
}

impl Command {
    /// Whether the command changes the list (and the list must be saved).
    pub fn writes(&self) -> bool {
        !matches!(self, Command::List)
    }
}

/// Runs `command` on `list`; the caller saves the list when it succeeded and
/// [`Command::writes`].
pub fn apply(list: &mut TodoList, command: &Command, now_ms: u64) -> Result<(), ListError> {
    match command {
        Command::List => Ok(()),
        Command::Add { text } => list.add(text, now_ms).map(|_| ()),
        Command::SetCompleted { id, completed } => list.set_completed(id, *completed),
        Command::Delete { id } => list.delete(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_750_000_000_000;

    fn ids(list: &TodoList) -> Vec<String> {
        list.sorted().into_iter().map(|t| t.id).collect()
    }

    #[test]
    fn text_is_trimmed_and_capped() {
        assert_eq!(clean_text("  buy milk \n"), Ok("buy milk"));
        assert_eq!(clean_text(""), Err(TextError::Empty));
        assert_eq!(clean_text(" \t\n "), Err(TextError::Empty));
        assert_eq!(clean_text(&"é".repeat(MAX_TEXT_CHARS)).map(|t| t.chars().count()), Ok(MAX_TEXT_CHARS));
        assert_eq!(clean_text(&"x".repeat(MAX_TEXT_CHARS + 1)), Err(TextError::TooLong));

        let mut list = TodoList::default();
        assert_eq!(list.add("   ", T0), Err(ListError::InvalidText(TextError::Empty)));
        assert_eq!(list.add(&"x".repeat(MAX_TEXT_CHARS + 1), T0), Err(ListError::InvalidText(TextError::TooLong)));
        assert!(list.is_empty());
        list.add("  spaced  ", T0).unwrap();
        assert_eq!(list.sorted()[0].text, "spaced");
    }

    #[test]
    fn ids_are_unique_and_increasing_within_one_millisecond_and_when_the_clock_goes_back() {
        let mut list = TodoList::default();
        let a = list.add("a", T0).unwrap();
        let b = list.add("b", T0).unwrap();
        let c = list.add("c", T0 - 5_000).unwrap();
        let d = list.add("d", T0 + 10).unwrap();
        assert_eq!(a, T0.to_string());
        assert_eq!(b, (T0 + 1).to_string());
        assert_eq!(c, (T0 + 2).to_string());
        assert_eq!(d, (T0 + 10).to_string());
        // A deleted id is never handed out again.
        list.delete(&d).unwrap();
        assert_eq!(list.add("e", T0).unwrap(), (T0 + 11).to_string());
    }

    #[test]
    fn the_list_is_capped() {
        let mut list = TodoList::default();
        for i in 0..MAX_TODOS {
            list.add(&format!("todo {i}"), T0).unwrap();
        }
        assert_eq!(list.add("one too many", T0), Err(ListError::Full));
        assert_eq!(list.len(), MAX_TODOS);
        let first = list.sorted()[0].id.clone();
        list.delete(&first).unwrap();
        list.add("fits again", T0).unwrap();
    }

    #[test]
    fn sorted_incomplete_first_then_by_id() {
        let mut list = TodoList::default();
        for (i, t) in ["a", "b", "c", "d"].iter().enumerate() {
            list.add(t, T0 + i as u64).unwrap();
        }
        list.set_completed(&T0.to_string(), true).unwrap();
        list.set_completed(&(T0 + 2).to_string(), true).unwrap();
        let texts: Vec<_> = list.sorted().into_iter().map(|t| (t.text, t.completed)).collect();
        assert_eq!(texts, vec![("b".into(), false), ("d".into(), false), ("a".into(), true), ("c".into(), true)]);
        // Numeric order, not string order, for ids of different lengths.
        let mut short = TodoList::default();
        short.add("nine", 9).unwrap();
        short.add("ten", 10).unwrap();
        assert_eq!(ids(&short), vec!["9", "10"]);
    }

    #[test]
    fn toggle_and_delete_unknown_ids_are_not_found() {
        let mut list = TodoList::default();
        let id = list.add("a", T0).unwrap();
        assert_eq!(list.set_completed("nope", true), Err(ListError::NotFound));
        assert_eq!(list.delete("nope"), Err(ListError::NotFound));
        list.set_completed(&id, true).unwrap();
        assert!(list.sorted()[0].completed);
        list.set_completed(&id, false).unwrap();
        assert!(!list.sorted()[0].completed);
        list.delete(&id).unwrap();
        assert_eq!(list.delete(&id), Err(ListError::NotFound));
        assert!(list.is_empty());
    }

    #[test]
    fn commands_round_trip_as_json_and_apply() {
        let cmds = [
            Command::List,
            Command::Add { text: "x".into() },
            Command::SetCompleted { id: "1".into(), completed: true },
            Command::Delete { id: "1".into() },
        ];
        for c in &cmds {
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(&serde_json::from_str::<Command>(&json).unwrap(), c);
        }
        assert_eq!(serde_json::to_value(&cmds[1]).unwrap(), serde_json::json!({"op": "add", "text": "x"}));
        assert!(!Command::List.writes() && cmds[1..].iter().all(Command::writes));

        let mut list = TodoList::default();
        apply(&mut list, &Command::Add { text: "x".into() }, 1).unwrap();
        apply(&mut list, &Command::SetCompleted { id: "1".into(), completed: true }, 2).unwrap();
        assert_eq!(list.sorted(), vec![Todo { id: "1".into(), text: "x".into(), completed: true }]);
        assert_eq!(apply(&mut list, &Command::Delete { id: "2".into() }, 3), Err(ListError::NotFound));
        apply(&mut list, &Command::Delete { id: "1".into() }, 3).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn stored_form_is_stable_and_tolerates_missing_fields() {
        let mut list = TodoList::default();
        list.add("a", 7).unwrap();
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            serde_json::json!({"lastId": 7, "todos": [{"id": "7", "text": "a", "completed": false}]})
        );
        assert_eq!(serde_json::from_str::<TodoList>("{}").unwrap(), TodoList::default());
    }
}
