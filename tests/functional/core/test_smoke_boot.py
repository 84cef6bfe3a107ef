def test_healthz(testapp):
    r = testapp.get("/healthz")
    assert r.json == {"status": "ok"}
