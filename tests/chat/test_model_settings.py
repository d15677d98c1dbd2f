"""Per-conversation system prompt, temperature and max tokens; presets; and that answers use them."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from chat.models import Conversation, Preset
from chat.presets import ModelSettings, model_settings_parse, preset_apply, preset_create
from chat.services import ChatError
from tests.chat.test_consumer import LLAMA, finish_generations, is_done
from tests.conftest import make_conversation, make_user, open_socket

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_blank_settings_mean_the_models_defaults() -> None:
    assert model_settings_parse(system_prompt="  ", temperature="", max_tokens=" ") == ModelSettings("", None, None)
    assert model_settings_parse(system_prompt=" Be brief. ", temperature="0,7", max_tokens="512") == ModelSettings(
        "Be brief.", 0.7, 512
    )


@pytest.mark.parametrize(
    ("temperature", "max_tokens", "code"),
    [
        ("2.5", "", "bad_temperature"),
        ("-0.1", "", "bad_temperature"),
        ("nan", "", "bad_temperature"),
        ("warm", "", "bad_temperature"),
        ("", "0", "bad_max_tokens"),
        ("", "1.5", "bad_max_tokens"),
        ("", "999999999", "bad_max_tokens"),
    ],
)
def test_out_of_range_settings_are_refused(temperature, max_tokens, code) -> None:
    with pytest.raises(ChatError) as error:
        model_settings_parse(system_prompt="", temperature=temperature, max_tokens=max_tokens)

    assert error.value.code == code


def test_settings_panel_saves_and_shows_the_values(alice) -> None:
    conversation = make_conversation(alice)
    client = logged_in(alice)

    response = client.post(
        f"/c/{conversation.uuid}/settings/",
        {"system_prompt": "Answer in French.", "temperature": "0.2", "max_tokens": "300"},
        follow=True,
    )

    conversation.refresh_from_db()
    assert (conversation.system_prompt, conversation.temperature, conversation.max_tokens) == (
        "Answer in French.",
        0.2,
        300,
    )
    page = response.content.decode()
    assert "Settings saved" in page
    assert 'value="0.2"' in page and 'value="300"' in page and "Answer in French.</textarea>" in page


def test_a_bad_value_is_explained_and_nothing_changes(alice) -> None:
    conversation = make_conversation(alice, temperature=1.0)

    response = logged_in(alice).post(
        f"/c/{conversation.uuid}/settings/", {"system_prompt": "x", "temperature": "3"}, follow=True
    )

    assert "Temperature must be a number from 0 to 2." in response.content.decode()
    conversation.refresh_from_db()
    assert (conversation.system_prompt, conversation.temperature) == ("", 1.0)


def test_settings_chosen_before_the_first_message_make_a_conversation(alice) -> None:
    response = logged_in(alice).post(
        "/c/settings/", {"system_prompt": "Be terse.", "temperature": "", "max_tokens": ""}
    )

    conversation = Conversation.objects.get(owner=alice)
    assert response["Location"] == conversation.get_absolute_url()
    assert conversation.system_prompt == "Be terse." and conversation.temperature is None


def test_presets_are_saved_from_the_panel_and_applied(alice) -> None:
    conversation = make_conversation(alice)
    client = logged_in(alice)

    client.post(
        "/presets/",
        {"preset_name": "Translator", "system_prompt": "Translate to German.", "temperature": "0.1", "max_tokens": ""},
    )
    preset = Preset.objects.get(owner=alice)
    client.post(f"/c/{conversation.uuid}/preset/", {"preset": str(preset.uuid)})

    conversation.refresh_from_db()
    assert (preset.name, preset.shared) == ("Translator", False)
    assert (conversation.system_prompt, conversation.temperature, conversation.max_tokens) == (
        "Translate to German.",
        0.1,
        None,
    )


def test_saving_a_preset_under_the_same_name_replaces_it(alice) -> None:
    preset_create(owner=alice, name="Mine", model_settings=ModelSettings("a", None, None))
    preset_create(owner=alice, name="Mine", model_settings=ModelSettings("b", 0.5, 10))

    assert list(Preset.objects.values_list("system_prompt", "temperature", "max_tokens")) == [("b", 0.5, 10)]


def test_only_staff_share_presets_and_everyone_sees_shared_ones(alice, bob) -> None:
    admin = make_user("admin", is_staff=True)
    with pytest.raises(ChatError):
        preset_create(owner=alice, name="Mine for all", model_settings=ModelSettings("x", None, None), shared=True)
    logged_in(alice).post("/presets/", {"preset_name": "Sneaky", "system_prompt": "x", "shared": "on"})
    assert not Preset.objects.filter(shared=True).exists()

    logged_in(admin).post("/presets/", {"preset_name": "House style", "system_prompt": "Be kind.", "shared": "on"})
    preset_create(owner=bob, name="Bob's own", model_settings=ModelSettings("bob", None, None))

    page = logged_in(alice).get("/").content.decode()
    assert "House style (shared)" in page and "Bob&#x27;s own" not in page and "Bob's own" not in page


def test_nobody_uses_or_deletes_another_users_private_preset(alice, bob) -> None:
    bobs = preset_create(owner=bob, name="Bob's", model_settings=ModelSettings("secret", None, None))
    conversation = make_conversation(alice)
    client = logged_in(alice)

    assert client.post(f"/c/{conversation.uuid}/preset/", {"preset": str(bobs.uuid)}).status_code == 404
    assert client.post("/presets/delete/", {"preset": str(bobs.uuid)}).status_code == 404
    assert Preset.objects.filter(pk=bobs.pk).exists()
    conversation.refresh_from_db()
    assert conversation.system_prompt == ""


def test_a_shared_preset_is_deleted_only_by_staff(alice) -> None:
    admin = make_user("admin", is_staff=True)
    shared = preset_create(owner=admin, name="House", model_settings=ModelSettings("x", None, None), shared=True)

    response = logged_in(alice).post("/presets/delete/", {"preset": str(shared.uuid)}, follow=True)
    assert "only they can delete it" in response.content.decode()
    logged_in(alice).post("/presets/delete/", {"preset": str(shared.uuid)})
    assert Preset.objects.filter(pk=shared.pk).exists()

    logged_in(admin).post("/presets/delete/", {"preset": str(shared.uuid)})
    assert not Preset.objects.filter(pk=shared.pk).exists()


def test_nobody_changes_another_users_settings(alice, bob) -> None:
    secret = make_conversation(bob, system_prompt="Bob's prompt")
    mine = preset_create(owner=alice, name="Mine", model_settings=ModelSettings("alice", None, None))
    client = logged_in(alice)

    assert client.post(f"/c/{secret.uuid}/settings/", {"system_prompt": "hijack"}).status_code == 404
    assert client.post(f"/c/{secret.uuid}/preset/", {"preset": str(mine.uuid)}).status_code == 404
    secret.refresh_from_db()
    assert secret.system_prompt == "Bob's prompt"
    preset_apply(conversation=make_conversation(alice), preset=mine)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_answers_use_the_conversations_system_prompt_and_settings(alice, llama, fake_ollama) -> None:
    conversation = await sync_to_async(make_conversation)(
        alice, system_prompt="Answer in French.", temperature=0.25, max_tokens=64
    )
    connected, _, ws = await open_socket(conversation.uuid, user=alice)
    assert connected

    await ws.send({"type": "send", "content": "Hello", "models": [LLAMA]})
    await ws.receive_until(is_done)
    await finish_generations()
    await ws.close()

    request = fake_ollama.chat_requests[-1]
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert request["options"]["temperature"] == 0.25
    assert request["options"]["num_predict"] == 64


def test_admins_manage_presets_in_the_admin(alice) -> None:
    admin = User.objects.create_superuser("root", password="root-password-123")
    preset = preset_create(owner=alice, name="Team style", model_settings=ModelSettings("x", None, None))
    client = logged_in(admin)

    listing = client.get("/admin/chat/preset/")
    response = client.post(
        f"/admin/chat/preset/{preset.pk}/change/",
        {
            "owner": alice.pk,
            "name": "Team style",
            "system_prompt": "x",
            "temperature": "",
            "max_tokens": "",
            "shared": "on",
        },
    )

    assert listing.status_code == 200 and "Team style" in listing.content.decode()
    assert response.status_code == 302
    preset.refresh_from_db()
    assert preset.shared
    assert "Team style (shared)" in logged_in(make_user("carol")).get("/").content.decode()


def test_a_preset_name_and_system_prompt_with_nul_are_saved_clean(alice) -> None:
    response = logged_in(alice).post(
        "/presets/", {"preset_name": "Te\x00rse\u202e", "system_prompt": "Be\x00 brief.\tAlways.", "temperature": ""}
    )

    assert response.status_code == 302
    preset = Preset.objects.get(owner=alice)
    assert (preset.name, preset.system_prompt) == ("Terse", "Be brief.\tAlways.")
