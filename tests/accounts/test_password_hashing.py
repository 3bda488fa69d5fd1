"""Passwords are Argon2id with Django's parameters, hashed at the lowest CPU priority so a
crowd signing in cannot starve live meetings (accounts/hashers.py, README "Performance")."""

import os
import threading

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password

import supportgroups.settings as project_settings
from accounts.hashers import BackgroundArgon2PasswordHasher, run_at_lowest_priority


def own_thread_priority():
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def project_hashers(settings):
    # The suite's conftests swap in a cheap hasher; these tests check the real one.
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS


def test_the_project_hashes_with_the_background_hasher_first():
    assert project_settings.PASSWORD_HASHERS[0] == "accounts.hashers.BackgroundArgon2PasswordHasher"
    # Only one hasher may claim "argon2": Django keeps the last one it sees per algorithm.
    algorithms = [h.rsplit(".", 1)[1] for h in project_settings.PASSWORD_HASHERS]
    assert "Argon2PasswordHasher" not in algorithms


def test_hashing_runs_at_the_lowest_priority_and_leaves_the_caller_alone():
    before = own_thread_priority()

    seen = run_at_lowest_priority(own_thread_priority)

    assert seen == 19
    assert own_thread_priority() == before


def test_errors_reach_the_caller():
    def fails():
        raise ValueError("bad salt")

    with pytest.raises(ValueError, match="bad salt"):
        run_at_lowest_priority(fails)


def test_hashes_are_plain_argon2id_that_django_verifies_without_rehashing(project_hashers):
    encoded = make_password("quiet-heron-lantern")

    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")
    # Django's own hasher verifies it: nothing is locked to our class.
    assert Argon2PasswordHasher().verify("quiet-heron-lantern", encoded)
    assert not Argon2PasswordHasher().verify("quiet-heron-lanterns", encoded)
    assert not BackgroundArgon2PasswordHasher().must_update(encoded)

    rehashed = []
    assert check_password("quiet-heron-lantern", encoded, setter=rehashed.append)
    assert rehashed == []  # same algorithm and parameters: no rehash at next sign-in
    assert not check_password("wrong", encoded)


def test_existing_django_argon2_hashes_still_verify(project_hashers):
    legacy = Argon2PasswordHasher().encode("quiet-heron-lantern", "c2FsdHNhbHRzYWx0")

    assert check_password("quiet-heron-lantern", legacy)
