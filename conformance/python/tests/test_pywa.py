"""pywa (4.5.0) against greenlight, unchanged but for where its httpx session sends requests.

pywa has no base-URL option, so it gets ``session=httpx.Client(transport=…)`` whose
transport rewrites https://graph.facebook.com to GREENLIGHT_URL (greenlight_support.py).
"""

from __future__ import annotations

import pytest
from pywa import WhatsApp

import greenlight_support as gs

pytestmark = pytest.mark.server

STATE: dict = {}


@pytest.fixture(scope="module")
def tenant():
    t = gs.create_tenant("pywa")
    t["inbound_id"] = gs.customer_writes(t)
    return t


@pytest.fixture(scope="module")
def wa(tenant):
    kwargs = {"api_version": gs.GRAPH_VERSION} if gs.GRAPH_VERSION else {}
    client = WhatsApp(
        phone_id=tenant["phone_number_id"],
        token=tenant["access_token"],
        waba_id=tenant["waba_id"],
        session=gs.pywa_session(),
        **kwargs,
    )
    yield client
    client.api._session.close()


@pytest.fixture(scope="module")
def png() -> bytes:
    return gs.make_png()


def assert_wamid(msg_id, where):
    assert isinstance(msg_id, str), f"{where}: id {msg_id!r}"
    assert gs.WAMID.match(msg_id), f"{where}: not a wamid: {msg_id}"


def test_send_text_inside_window_returns_wamid(wa):
    sent = wa.send_message(to=gs.CUSTOMER, text="Hello from pywa")
    assert_wamid(sent.id, "send_message")
    # pywa builds SentMessage from contacts[0].input and contacts[0].wa_id
    assert sent.input == gs.CUSTOMER
    assert sent.chat.id == gs.CUSTOMER


def test_upload_png_returns_media_id(wa, png):
    media = wa.upload_media(media=png, mime_type="image/png", filename="pixel.png")
    assert isinstance(media.id, str) and media.id
    STATE["media_id"] = media.id


def test_send_image_by_media_id(wa):
    media_id = STATE.get("media_id")
    assert media_id, "needs the upload test"
    # pywa treats a string of digits as a media id (anything else as a path/base64)
    assert media_id.isdigit(), f"media id {media_id!r} is not a digit string: pywa would not see it as an id"
    sent = wa.send_image(to=gs.CUSTOMER, image=media_id, caption="by id")
    assert_wamid(sent.id, "send_image(id)")


def test_send_image_by_link(wa):
    sent = wa.send_image(to=gs.CUSTOMER, image=gs.IMAGE_LINK, caption="by link")
    assert_wamid(sent.id, "send_image(link)")


def test_mark_inbound_as_read_returns_success(wa, tenant):
    res = wa.mark_message_as_read(message_id=tenant["inbound_id"])
    assert res.success is True


def test_media_info_has_url_mime_sha256_size(wa, png):
    media_id = STATE.get("media_id")
    assert media_id, "needs the upload test"
    info = wa.get_media_url(media_id=media_id)
    assert info.id == media_id
    assert info.mime_type == "image/png"
    assert int(info.file_size) == len(png), f"file_size {info.file_size!r}"
    assert gs.sha256_matches(info.sha256, png), f"sha256 {info.sha256}"
    assert info.url.startswith(("http://", "https://")), info.url
    STATE["media_url"] = info.url


def test_download_media_bytes(wa, png):
    url = STATE.get("media_url")
    assert url, "needs the media info test"
    # pywa GETs the returned url with the session's headers (Authorization: Bearer …),
    # following redirects.
    assert wa.get_media_bytes(url=url) == png


def test_get_business_phone_number(wa, tenant):
    phone = wa.get_business_phone_number()
    assert phone.id == tenant["phone_number_id"]
    assert isinstance(phone.display_phone_number, str) and phone.display_phone_number
    assert isinstance(phone.verified_name, str) and phone.verified_name


def test_list_business_phone_numbers(wa, tenant):
    res = wa.get_business_phone_numbers()
    ids = [p.id for p in res]
    assert tenant["phone_number_id"] in ids, ids


def test_free_form_to_customer_who_never_wrote_is_accepted(wa):
    sent = wa.send_message(to=gs.STRANGER, text="Hello stranger (fails later with 131047)")
    assert_wamid(sent.id, "send_message(stranger)")
