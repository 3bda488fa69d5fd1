"""The app starts as in production and serves its pages to a real browser."""

from playwright.sync_api import expect


def test_it_serves_the_home_page_from_its_own_origin(page, live_server_url, requested_urls):
    response = page.goto(live_server_url + "/")
    assert response.status == 200
    expect(page.locator("h1").first).to_be_visible()

    response = page.goto(live_server_url + "/healthz")
    assert response.status == 200

    # The page fixture also fails the test on foreign requests; say it here too.
    assert requested_urls
    assert all(url.startswith(live_server_url + "/") for url in requested_urls), requested_urls


def test_it_records_requests_to_an_allowed_foreign_origin(
    page, requested_urls, allow_foreign_origin
):
    # How a test opts in to another origin: allow it, and answer it with page.route so
    # that nothing actually leaves the machine.
    allow_foreign_origin("https://neutral.example")
    page.route(
        "https://neutral.example/**",
        lambda route: route.fulfill(content_type="text/html", body="<h1>elsewhere</h1>"),
    )
    page.goto("https://neutral.example/")
    assert requested_urls == ["https://neutral.example/"]
