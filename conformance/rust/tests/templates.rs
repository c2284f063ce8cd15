//! wacloudapi template management against greenlight (may not be implemented server-side
//! yet). One scenario: create, list, delete by name.

mod common;
use common::*;
use wacloudapi::templates::{CreateTemplate, TemplateComponentDef, TemplateExample};

#[tokio::test]
async fn template_create_list_delete() {
    let Some(env) = env("template_create_list_delete") else { return };
    if skip_templates("template_create_list_delete") {
        return;
    }
    let t = create_tenant(&env, "wacloudapi templates").await;
    let c = client(&env, &t);
    let name = format!("conformance_rs_{}", std::process::id());
    let created = c
        .templates()
        .create(
            &t.waba_id,
            &CreateTemplate {
                name: name.clone(),
                category: "UTILITY".into(),
                language: "en_US".into(),
                components: vec![TemplateComponentDef {
                    component_type: "BODY".into(),
                    format: None,
                    text: Some("Your order {{1}} has shipped.".into()),
                    buttons: None,
                    example: Some(TemplateExample {
                        header_handle: None,
                        header_text: None,
                        body_text: Some(vec![vec!["12345".into()]]),
                    }),
                }],
                allow_category_change: None,
            },
        )
        .await
        .expect("templates().create");
    assert!(!created.id.is_empty());
    assert_eq!(created.category, "UTILITY");

    // wacloudapi requires name, components, language, status, category on every item.
    let list = c.templates().list(&t.waba_id).await.expect("templates().list");
    assert!(list.data.iter().any(|x| x.name == name), "{:?}", list.data);

    let del = c.templates().delete(&t.waba_id, &name).await.expect("templates().delete");
    assert!(del.success);
}
