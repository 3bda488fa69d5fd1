"""Deleting an account while one of the person's chat messages is being stored: the message
loses its text like the others (it is not stored with its text after the deletion)."""

import threading
from importlib import import_module

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client, RequestFactory

from meetings import services
from meetings.models import Message
from privacy import services as privacy_services
from tests.database import wait_for_lock_waiter
from tests.meetings.conftest import build_world


@pytest.mark.django_db(transaction=True)
def test_a_message_being_stored_during_the_deletion_loses_its_text_too():
    world = build_world()
    client = Client()
    client.force_login(world.river.user)
    session_key = client.session.session_key
    stored, commit = threading.Event(), threading.Event()
    outcomes = []

    def send() -> None:
        # A chat batch in flight: the send is stored, its transaction not yet committed.
        try:
            with transaction.atomic():
                outcomes.extend(
                    services.messages_post(
                        sends=[
                            services.MessageSend(
                                meeting_id=world.meeting.pk,
                                membership_id=world.river.pk,
                                client_id="during-0001",
                                body="Written while the account goes.",
                                session_key=session_key,
                            )
                        ]
                    )
                )
                stored.set()
                commit.wait(20)
        finally:
            connections.close_all()

    def delete() -> None:
        try:
            request = RequestFactory().post("/accounts/delete/")
            request.user = world.river.user
            request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
            privacy_services.account_delete(user=world.river.user, request=request)
        finally:
            connections.close_all()

    sender = threading.Thread(target=send)
    sender.start()
    assert stored.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    wait_for_lock_waiter()  # the deletion waits for the send's transaction
    commit.set()
    sender.join(20)
    deleter.join(20)
    assert isinstance(outcomes[0], services.PostedMessage)
    message = Message.objects.get(meeting=world.meeting, client_id="during-0001")
    assert (message.body, message.author_id) == (None, None)
