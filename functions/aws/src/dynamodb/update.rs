//! [`Update`]: one conditional `UpdateItem`, built once and sent either on its own or as
//! one action of a `TransactWriteItems`, so that the single and the batched writes of
//! [`DynamoStore`](super::DynamoStore) can never drift apart.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use backup_engine::ports::StoreResult;
use backup_engine::StoreError;

use super::{backend, s, update_condition_failed, Item};

/// Sets the fields that carry an [`Update`] on `$builder`: `UpdateItem`'s request and a
/// transaction's `Update` are different builders with the same setters, and a macro is what
/// lets the two share them.
macro_rules! with_update {
    ($builder:expr, $update:expr, $table:expr) => {
        $builder
            .table_name($table)
            .set_key(Some($update.key.clone()))
            .update_expression($update.expression())
            .set_condition_expression($update.condition.clone())
            .set_expression_attribute_names(Some($update.names.clone()))
            .set_expression_attribute_values(
                (!$update.values.is_empty()).then(|| $update.values.clone()),
            )
    };
}

#[derive(Debug, Clone)]
pub(super) struct Update {
    key: Item,
    set: Vec<String>,
    remove: Vec<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl Update {
    pub(super) fn new(pk: impl Into<String>, sk: &str) -> Update {
        Update {
            key: Item::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]),
            set: Vec::new(),
            remove: Vec::new(),
            condition: None,
            names: HashMap::new(),
            values: Item::new(),
        }
    }

    /// `SET #attr = :attr` for a plain attribute name.
    pub(super) fn set(mut self, attr: &str, value: AttributeValue) -> Update {
        self.set.push(format!("#{attr} = :{attr}"));
        self.names.insert(format!("#{attr}"), attr.to_owned());
        self.values.insert(format!(":{attr}"), value);
        self
    }

    /// A `SET` clause written out (`#token = if_not_exists(#token, :seed) + :one`); its
    /// names and values are declared with [`name`](Self::name) and [`value`](Self::value).
    pub(super) fn set_expression(mut self, clause: impl Into<String>) -> Update {
        self.set.push(clause.into());
        self
    }

    pub(super) fn remove(mut self, attr: &str) -> Update {
        self.remove.push(format!("#{attr}"));
        self.names.insert(format!("#{attr}"), attr.to_owned());
        self
    }

    /// Sets `attr` when `value` is `Some`, removes it otherwise.
    pub(super) fn set_or_remove(self, attr: &str, value: Option<AttributeValue>) -> Update {
        match value {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    pub(super) fn condition(mut self, condition: impl Into<String>) -> Update {
        self.condition = Some(condition.into());
        self
    }

    pub(super) fn name(mut self, placeholder: &str, attr: &str) -> Update {
        self.names.insert(placeholder.to_owned(), attr.to_owned());
        self
    }

    pub(super) fn value(mut self, placeholder: &str, value: AttributeValue) -> Update {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn expression(&self) -> String {
        let mut expression = String::new();
        if !self.set.is_empty() {
            expression.push_str(&format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            if !expression.is_empty() {
                expression.push(' ');
            }
            expression.push_str(&format!("REMOVE {}", self.remove.join(", ")));
        }
        expression
    }

    /// Sends it as one `UpdateItem`; a failed condition returns the old item.
    pub(super) async fn send(
        &self,
        client: &Client,
        table: &str,
        return_values: ReturnValue,
    ) -> Result<
        UpdateItemOutput,
        SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    > {
        with_update!(client.update_item(), self, table)
            .return_values(return_values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
    }

    /// Sends it as one `UpdateItem`: `false` when its condition failed (nothing changed).
    pub(super) async fn apply(&self, client: &Client, table: &str) -> StoreResult<bool> {
        match self.send(client, table, ReturnValue::None).await {
            Ok(_) => Ok(true),
            Err(e) if update_condition_failed(&e) => Ok(false),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    /// The same update as one action of a transaction.
    pub(super) fn transact(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let update = with_update!(aws_sdk_dynamodb::types::Update::builder(), self, table)
            .build()
            .map_err(|e| StoreError::backend("invalid transaction update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
