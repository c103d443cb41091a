"""HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, read once for both transports.

Qt 5 on Linux reads only the lower-case `http_proxy`, and libcurl ignores an upper-case
HTTP_PROXY. Reading the environment with the standard library here and handing each transport
its proxy explicitly makes both agree on every variable.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

from PyQt5.QtNetwork import QNetworkProxy, QNetworkProxyFactory, QNetworkProxyQuery


def environment_proxies() -> Dict[str, str]:
    """{"http": url, "https": url, "all": url, "no": hosts} from the environment (either case)."""
    if not any(name[-6:].lower() == "_proxy" for name in os.environ):
        # The usual case, answered without urllib.request: importing it (http.client, email)
        # cost 15-50 ms of every app's start-up, on the GUI thread, before its window showed.
        return {}
    import urllib.request

    return {k: v for k, v in urllib.request.getproxies_environment().items() if v}


def proxy_for_url(url: str, proxies: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The proxy URL the environment names for `url`, or None for a direct connection.

    The usual rule (scheme variable, then ALL_PROXY; NO_PROXY wins). Both transports route by
    it, and can tell a refused proxy from a refused origin.
    """
    from urllib.parse import urlsplit

    proxies = environment_proxies() if proxies is None else proxies
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy or _bypassed(parts.hostname or "", proxies.get("no", "")):
        return None
    return _with_port(proxy if "://" in proxy else "http://" + proxy)


# A proxy URL without a port means its scheme's port, as libcurl, urllib and requests read it;
# Qt needs one said (its own default, 8080, sent http tiles elsewhere than https ones).
_PROXY_DEFAULT_PORTS = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080,
                        "socks5h": 1080}


def _with_port(proxy: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(proxy)
    try:
        port = parts.port
    except ValueError:  # not a number: left for each transport to refuse
        return proxy
    default = _PROXY_DEFAULT_PORTS.get(parts.scheme.lower())
    if port is not None or default is None or not parts.hostname:
        return proxy
    netloc = parts.netloc.rstrip(":")  # "proxy.corp:" has no port either
    return parts._replace(netloc=f"{netloc}:{default}").geturl()


def _bypassed(host: str, no_proxy: str) -> bool:
    if not no_proxy:
        return False
    if no_proxy.strip() == "*":
        return True
    import urllib.request

    return bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))


class EnvironmentProxyFactory(QNetworkProxyFactory):
    """Chooses a proxy per request from the environment. Thread: any (pure lookups)."""

    def __init__(self, proxies: Dict[str, str]):
        super().__init__()
        self._proxies = dict(proxies)

    @classmethod
    def from_environment(cls) -> Optional["EnvironmentProxyFactory"]:
        proxies = environment_proxies()
        if not (proxies.get("http") or proxies.get("https") or proxies.get("all")):
            return None
        return cls(proxies)

    def queryProxy(self, query: QNetworkProxyQuery = QNetworkProxyQuery()) -> List[QNetworkProxy]:
        proxy_url = proxy_for_url(query.url().toString(), self._proxies)
        if proxy_url is None:
            return [QNetworkProxy(QNetworkProxy.NoProxy)]
        from PyQt5.QtCore import QUrl

        parsed = QUrl(proxy_url)
        if parsed.scheme().lower() not in ("http", "https"):
            # A socks5:// proxy: Qt speaks SOCKS5 itself (as does libcurl).
            return [QNetworkProxy(QNetworkProxy.Socks5Proxy, parsed.host(), parsed.port(1080),
                                  parsed.userName(), parsed.password())]
        # HttpProxy: absolute-form GET for http URLs and CONNECT for https, as libcurl does.
        return [QNetworkProxy(QNetworkProxy.HttpProxy, parsed.host(), parsed.port(8080),
                              parsed.userName(), parsed.password())]


class SystemProxyFactory(QNetworkProxyFactory):
    """The platform's proxy settings (the desktop's proxy, a PAC file) for one manager only:
    `QNetworkProxyFactory.setUseSystemConfiguration(True)` would impose them on every manager in
    the process, the host application's own included. Thread: the manager's."""

    def queryProxy(self, query: QNetworkProxyQuery = QNetworkProxyQuery()) -> List[QNetworkProxy]:
        return QNetworkProxyFactory.systemProxyForQuery(query)


def proxy_factory_for_qt() -> Optional[QNetworkProxyFactory]:
    """A new factory for one QNetworkAccessManager, or None to leave it the application's proxy.

    The environment's variables win, so both transports route alike. Without them: on Linux Qt's
    "system" settings are those same variables, so nothing is set and a proxy the host
    application chose still applies; elsewhere the platform's settings, as browsers use them.
    """
    factory = EnvironmentProxyFactory.from_environment()
    if factory is None and not sys.platform.startswith("linux"):
        factory = SystemProxyFactory()
    return factory
