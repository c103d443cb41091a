"""HTTP_PROXY / HTTPS_PROXY / NO_PROXY for the Qt transport.

Qt 5 on Linux reads only the lower-case `http_proxy`; httpx reads the usual set. Reading the
environment with the standard library here makes both transports agree on every variable.
"""
from __future__ import annotations

import urllib.request
from typing import Dict, List, Optional

from PyQt5.QtNetwork import QNetworkProxy, QNetworkProxyFactory, QNetworkProxyQuery


def environment_proxies() -> Dict[str, str]:
    """{"http": url, "https": url, "no": hosts} from the environment (either case)."""
    return {k: v for k, v in urllib.request.getproxies_environment().items() if v}


class EnvironmentProxyFactory(QNetworkProxyFactory):
    """Chooses a proxy per request from the environment. Thread: any (pure lookups)."""

    def __init__(self, proxies: Dict[str, str]):
        super().__init__()
        self._proxies = dict(proxies)

    @classmethod
    def from_environment(cls) -> Optional["EnvironmentProxyFactory"]:
        proxies = environment_proxies()
        if not (proxies.get("http") or proxies.get("https")):
            return None
        return cls(proxies)

    def queryProxy(self, query: QNetworkProxyQuery = QNetworkProxyQuery()) -> List[QNetworkProxy]:
        url = query.url()
        scheme = url.scheme().lower()
        proxy_url = self._proxies.get(scheme)
        if not proxy_url or self._bypassed(url.host()):
            return [QNetworkProxy(QNetworkProxy.NoProxy)]
        from PyQt5.QtCore import QUrl

        parsed = QUrl(proxy_url if "://" in proxy_url else "http://" + proxy_url)
        proxy = QNetworkProxy(QNetworkProxy.HttpProxy, parsed.host(), parsed.port(8080),
                              parsed.userName(), parsed.password())
        return [proxy]

    def _bypassed(self, host: str) -> bool:
        no_proxy = self._proxies.get("no", "")
        if not no_proxy:
            return False
        return bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))
