"""HTTP_PROXY / HTTPS_PROXY / NO_PROXY: both transports through a real local forward proxy."""
import pytest
from PyQt5.QtCore import QUrl
from PyQt5.QtNetwork import QNetworkProxy, QNetworkProxyQuery

from imagegallery.model import ImageGalleryModel
from imagegallery.limits import LoadLimits
from imagegallery.transport.proxy import EnvironmentProxyFactory, proxy_for_url
from imagegallery.transport.qt import qt_has_tls
from imaging import center_color, close_to, serve_solid_images, solid_image_bytes
from proxy_server import ForwardProxy
from servers import free_port_refusing_connections

Status = ImageGalleryModel.Status
COLORS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]


@pytest.fixture
def proxy():
    server = ForwardProxy()
    yield server
    server.stop()


@pytest.fixture(params=["qt", "curl"])
def transport(request):
    return request.param


@pytest.fixture
def proxied_model(transport, make_model):
    """Models on the parametrized transport. Create them after setting the environment: a
    transport reads the proxy variables when it is made, as Qt does."""

    def make(**properties):
        model = make_model(transport=transport, **properties)
        model.set_limits(LoadLimits(max_retries=0))
        return model

    return make


def serve(server, colors=COLORS):
    return serve_solid_images(server, colors, 64, 48)


def load_all(qtbot, model, urls):
    with qtbot.waitSignal(model.finished, timeout=10000):
        model.urls = urls
    return [model.status_of(r) for r in range(model.count)]


def reasons(model):
    return [model.data(model.index(r), ImageGalleryModel.ErrorStringRole) for r in range(model.count)]


# -- the rules, without a network --------------------------------------------------------

def test_scheme_variable_then_all_proxy_and_no_proxy_wins():
    proxies = {"http": "127.0.0.1:3128", "all": "http://fallback:8080", "no": "internal.example,.corp"}
    assert proxy_for_url("http://images.example/a.png", proxies) == "http://127.0.0.1:3128"
    assert proxy_for_url("https://images.example/a.png", proxies) == "http://fallback:8080"
    assert proxy_for_url("http://internal.example/a.png", proxies) is None
    assert proxy_for_url("http://cdn.corp/a.png", proxies) is None
    assert proxy_for_url("http://x.example/a.png", {"http": "p:1", "no": "*"}) is None
    assert proxy_for_url("http://x.example/a.png", {}) is None


def test_a_proxy_without_a_port_gets_its_schemes_port():
    # As libcurl, urllib and requests read it; Qt alone would have used 8080.
    url = "http://images.example/a.png"
    assert proxy_for_url(url, {"http": "http://proxy.corp"}) == "http://proxy.corp:80"
    assert proxy_for_url(url, {"http": "proxy.corp"}) == "http://proxy.corp:80"
    assert proxy_for_url(url, {"http": "https://user:pw@proxy.corp/"}) == "https://user:pw@proxy.corp:443/"
    assert proxy_for_url(url, {"http": "socks5h://proxy.corp"}) == "socks5h://proxy.corp:1080"
    assert proxy_for_url(url, {"http": "http://proxy.corp:3128"}) == "http://proxy.corp:3128"
    assert proxy_for_url(url, {"http": "http://proxy.corp:"}) == "http://proxy.corp:80"
    factory = EnvironmentProxyFactory({"http": "http://proxy.corp"})
    [proxy] = factory.queryProxy(QNetworkProxyQuery(QUrl(url)))
    assert (proxy.hostName(), proxy.port()) == ("proxy.corp", 80)


def test_qt_factory_answers_with_the_same_rules():
    factory = EnvironmentProxyFactory({"http": "http://127.0.0.1:3128", "no": "skip.example"})
    [proxy] = factory.queryProxy(QNetworkProxyQuery(QUrl("http://images.example/a.png")))
    assert (proxy.type(), proxy.hostName(), proxy.port()) == (QNetworkProxy.HttpProxy, "127.0.0.1", 3128)
    [direct] = factory.queryProxy(QNetworkProxyQuery(QUrl("http://skip.example/a.png")))
    assert direct.type() == QNetworkProxy.NoProxy
    [no_https] = factory.queryProxy(QNetworkProxyQuery(QUrl("https://images.example/a.png")))
    assert no_https.type() == QNetworkProxy.NoProxy


def test_no_factory_without_proxy_variables(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert EnvironmentProxyFactory.from_environment() is None


# -- through the proxy -------------------------------------------------------------------

def test_http_goes_through_http_proxy(qtbot, monkeypatch, image_server, proxy, proxied_model):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    model = proxied_model()
    urls = serve(image_server)
    assert load_all(qtbot, model, urls) == [Status.Ready] * 4, reasons(model)
    for row, color in enumerate(COLORS):
        assert close_to(center_color(model.thumbnail(row)), color)
    # Each image was asked of the proxy in absolute form, and the proxy fetched it.
    assert sorted(target for _, target in proxy.forwarded) == sorted(urls)
    assert proxy.count("GET") == 4 and image_server.total_hits() == 4


def test_no_proxy_bypasses_it(qtbot, monkeypatch, image_server, proxy, proxied_model):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    model = proxied_model()
    assert load_all(qtbot, model, serve(image_server)) == [Status.Ready] * 4, reasons(model)
    assert proxy.forwarded == [] and image_server.total_hits() == 4


def test_no_proxy_is_applied_by_the_shared_rules_alone(qtbot, monkeypatch, image_server,
                                                       proxied_model):
    # A CIDR block: urllib's rules (and so proxy.py's) do not read it, libcurl's own do. libcurl
    # went straight to the origin where Qt went through the proxy.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port_refusing_connections()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    monkeypatch.delenv("no_proxy", raising=False)
    url = serve(image_server, COLORS[:1])[0]
    assert proxy_for_url(url) is not None
    model = proxied_model()
    assert load_all(qtbot, model, [url]) == [Status.Error]
    assert reasons(model) == ["proxy refused the connection"]
    assert image_server.total_hits() == 0


def test_refused_proxy_is_a_proxy_error(qtbot, monkeypatch, image_server, proxied_model):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port_refusing_connections()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    model = proxied_model()
    assert load_all(qtbot, model, serve(image_server, COLORS[:1])) == [Status.Error]
    assert reasons(model) == ["proxy refused the connection"]
    assert image_server.total_hits() == 0


def test_https_tunnels_through_connect(qtbot, monkeypatch, transport, https_server, test_ca, proxy,
                                       proxied_model):
    if transport == "qt" and not qt_has_tls():
        pytest.skip("this Qt cannot load OpenSSL, so it has no https to tunnel")
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    model = proxied_model(caFile=test_ca.ca_file)
    assert load_all(qtbot, model, serve(https_server)) == [Status.Ready] * 4, reasons(model)
    # Every request went through a tunnel to the origin, and spoke HTTP/2 inside it. httpcore
    # opens a tunnel per request that arrives while the first is still connecting (it cannot
    # know yet that the tunnel will carry HTTP/2), so there may be up to one per image.
    assert 1 <= proxy.count("CONNECT") <= 4
    assert set(proxy.forwarded) == {("CONNECT", f"127.0.0.1:{https_server.port}")}
    assert https_server.http_versions == {"2": 4}
    assert https_server.connections == proxy.count("CONNECT")


def test_the_host_applications_own_proxy_setting_is_left_alone(monkeypatch, make_model):
    from PyQt5.QtNetwork import QNetworkProxyFactory

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    hosts_proxy = QNetworkProxy(QNetworkProxy.HttpProxy, "proxy.example.invalid", 3128)
    QNetworkProxy.setApplicationProxy(hosts_proxy)
    try:
        make_model(transport="qt").loader.transport_transfers()  # its Qt transport exists now
        # What every other manager of the host asks for a URL (Qt skips proxies for loopback).
        chosen = QNetworkProxyFactory.proxyForQuery(
            QNetworkProxyQuery(QUrl("http://images.example.invalid/a.jpg")))
        assert [(p.type(), p.hostName(), p.port()) for p in chosen] == [
            (QNetworkProxy.HttpProxy, "proxy.example.invalid", 3128)]
    finally:
        QNetworkProxy.setApplicationProxy(QNetworkProxy(QNetworkProxy.NoProxy))


def test_every_origin_gets_its_own_connections_through_a_proxy(qtbot, monkeypatch, image_server,
                                                              proxied_model):
    # libcurl counts a proxy as the host: twelve origins shared its six connections, and the
    # transfers the loader had started waited inside libcurl until they timed out.
    body = solid_image_bytes("#ff0000", 64, 48)
    image_server.latency = 0.3  # the proxy takes a moment for each
    urls = []
    for origin in range(12):
        for number in range(2):
            url = f"http://origin{origin}.invalid:8080/img{number}.png"
            image_server.add(url, body)  # the proxy's answer for that absolute URI
            urls.append(url)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{image_server.port}")
    model = proxied_model()
    assert load_all(qtbot, model, urls) == [ImageGalleryModel.Status.Ready] * len(urls)
    assert image_server.max_in_flight > 6
