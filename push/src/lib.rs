//! Push delivery (providers arrive with the notifications issue).
