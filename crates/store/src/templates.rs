//! Message templates in the store: the management API's state, the review that decides them
//! (run as a scheduled task on the virtual clock), and operator decisions and appeals
//! (cloud-api-facts.md §3). The format and content rules themselves are the pure
//! `greenlight_domain::template` module.

use crate::{Scope, StoreResult};
use async_trait::async_trait;
use greenlight_domain::Millis;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct TemplateRecord {
    pub id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub previous_category: Option<String>,
    pub status: String,
    pub rejected_reason: Option<String>,
    pub rejection_info: Option<Value>,
    pub quality_score: String,
    pub quality_at: Option<Millis>,
    /// The create body as accepted (name, language, category, parameter_format, components…).
    pub definition: Value,
    /// The review's explanation (signals and rules that fired).
    pub review: Option<Value>,
    pub paused_until: Option<Millis>,
    pub pause_count: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub(crate) seq: i64,
}

impl TemplateRecord {
    /// Position in creation order: what paging cursors encode.
    pub fn seq(&self) -> i64 {
        self.seq
    }
}

/// `GET /{waba-id}/message_templates` filters (Meta's names).
#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    /// Substring of the name.
    pub name: Option<String>,
    /// Substring of the body text.
    pub content: Option<String>,
    pub name_or_content: Option<String>,
    pub language: Vec<String>,
    pub category: Vec<String>,
    pub status: Vec<String>,
    pub quality_score: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TemplatePage {
    pub items: Vec<TemplateRecord>,
    /// Whether a page exists before the first item / after the last one.
    pub has_before: bool,
    pub has_after: bool,
    /// Matching templates in all pages.
    pub total_count: u64,
    /// All live templates of the WABA (every language counts), and its limit.
    pub template_count: u64,
    pub template_limit: u64,
}

#[derive(Debug, Clone)]
pub enum Cursor {
    First,
    After(i64),
    Before(i64),
}

/// A template to create (already through the synchronous format checks).
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub definition: Value,
    pub now: Millis,
    /// When the (virtual-time) review decides it.
    pub review_at: Millis,
}

#[derive(Debug, Clone)]
pub struct TemplateEdit {
    pub id: String,
    pub definition: Value,
    /// Set when the edit asks to change the category.
    pub category: Option<String>,
    pub now: Millis,
    pub review_at: Millis,
}

#[derive(Debug, Clone)]
pub enum TemplateDeletion {
    /// Every language of a name.
    Name(String),
    /// One template by id (and its name).
    Id { id: String, name: String },
    /// Up to 100 ids.
    Ids(Vec<String>),
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    async fn create_template(&self, scope: &Scope, t: NewTemplate) -> StoreResult<TemplateRecord>;
    async fn template(&self, scope: &Scope, id: &str) -> StoreResult<Option<TemplateRecord>>;
    async fn list_templates(
        &self,
        scope: &Scope,
        waba_id: &str,
        filter: TemplateFilter,
        limit: usize,
        cursor: Cursor,
    ) -> StoreResult<TemplatePage>;
    async fn edit_template(&self, scope: &Scope, edit: TemplateEdit) -> StoreResult<()>;
    async fn delete_templates(
        &self,
        scope: &Scope,
        waba_id: &str,
        what: TemplateDeletion,
        now: Millis,
    ) -> StoreResult<usize>;
    /// The tenant appeals a rejection: `REJECTED` → `IN_APPEAL`.
    async fn appeal_template(
        &self,
        scope: &Scope,
        id: &str,
        reason: String,
        now: Millis,
    ) -> StoreResult<TemplateRecord>;
    /// Operator: the tenant that owns a template.
    async fn scope_of_template(&self, id: &str) -> StoreResult<Option<Scope>>;
    /// Operator decision on a pending or appealed template.
    async fn decide_template(
        &self,
        scope: &Scope,
        id: &str,
        approve: bool,
        reason: Option<String>,
        now: Millis,
    ) -> StoreResult<TemplateRecord>;
}
