//! Prompt messages (PROTOCOL.md §13.5). The exact text is consensus-critical:
//! validators rebuild the prompt tokens from it.
#![forbid(unsafe_code)]

use crate::{Message, Problem, Role};

/// The system message shared by every problem.
pub const SYSTEM_PROMPT: &str = "You are a careful problem solver. Reason step by step. \
When you are done, write the final answer inside <SOLUTION></SOLUTION> tags, exactly once, \
at the end of your reply.";

/// System and user messages for a problem.
pub fn messages(problem: &Problem) -> Vec<Message> {
    let user = match problem {
        Problem::Sat(p) => format!(
            "Find an assignment of the boolean variables x1 to x{n} that makes every clause \
of this formula true. Each line is one clause, a disjunction (OR) of literals; the formula \
is the conjunction (AND) of all {m} clauses.\n\n{clauses}\n\nGive the values of x1 to x{n} \
in order, as 0 or 1 separated by single spaces, inside <SOLUTION></SOLUTION>; for example \
<SOLUTION>{example}</SOLUTION>.",
            n = p.num_vars,
            m = p.clauses.len(),
            clauses = p.to_text(),
            example = "1 0 1 ...",
        ),
        Problem::Math(p) => format!(
            "{question}\n\nGive the final answer as a single number (an integer, or a fraction \
such as 7/2 when it is not whole), without units, inside <SOLUTION></SOLUTION>; for example \
<SOLUTION>42</SOLUTION>.",
            question = p.question,
        ),
    };
    vec![
        Message {
            role: Role::System,
            content: SYSTEM_PROMPT.to_string(),
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}
