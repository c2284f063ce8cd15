"""pywa template management against greenlight (may not be implemented server-side yet)."""

from __future__ import annotations

import secrets

import pytest
from pywa import WhatsApp
from pywa.types.templates import BodyText, Template, TemplateCategory, TemplateLanguage

import greenlight_support as gs

pytestmark = [pytest.mark.server, pytest.mark.templates]

NAME = f"conformance_pywa_{secrets.token_hex(4)}"
STATE: dict = {}


@pytest.fixture(scope="module")
def wa():
    t = gs.create_tenant("pywa templates")
    kwargs = {"api_version": gs.GRAPH_VERSION} if gs.GRAPH_VERSION else {}
    client = WhatsApp(
        phone_id=t["phone_number_id"],
        token=t["access_token"],
        waba_id=t["waba_id"],
        app_id=t["app_id"],
        session=gs.pywa_session(),
        **kwargs,
    )
    yield client
    client.api._session.close()


def test_create_template(wa):
    created = wa.create_template(
        template=Template(
            name=NAME,
            language=TemplateLanguage.ENGLISH_US,
            category=TemplateCategory.UTILITY,
            components=[BodyText("Your order {{1}} has shipped.", "12345")],
        )
    )
    assert isinstance(created.id, str) and created.id
    assert created.category == TemplateCategory.UTILITY
    STATE["id"] = created.id


def test_list_templates_with_summary(wa):
    # pywa always asks for summary=total_count,message_template_count,
    # message_template_limit,are_translations_complete and requires all four, and
    # parses every item (id, name, language, status, category, parameter_format, components).
    res = wa.get_templates()
    assert isinstance(res.total_count, int)
    assert any(t.name == NAME for t in res), [t.name for t in res]


def test_get_template_by_id(wa):
    assert STATE.get("id"), "needs the create test"
    t = wa.get_template(template_id=STATE["id"])
    assert t.id == STATE["id"] and t.name == NAME


def test_delete_template(wa):
    res = wa.delete_template(template_name=NAME, template_id=STATE.get("id"))
    assert res.success is True
