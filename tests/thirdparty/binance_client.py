"""A mainstream third-party Binance client (ccxt, from PyPI) against `bulwark exchange-sim`.

The client runs unchanged apart from its base URL: every request it makes goes to the simulator,
signed with the simulator account's HMAC secret, and every answer is read by ccxt's own Binance
code. The script starts nothing itself; `scripts/thirdparty` starts the simulator and a throwaway
virtual environment and runs it.

Environment:
  EXCHANGE_SIM_URL         base URL printed by `bulwark exchange-sim` (http://127.0.0.1:PORT)
  EXCHANGE_SIM_API_KEY     the account's API key
  EXCHANGE_SIM_API_SECRET  the account's HMAC secret
  EXCHANGE_SIM_BALANCES    the account's starting balances as given to the simulator
                           (default USDT=10000,BTC=0.5)

Exits 0 when every step passed; any failed assertion or client error ends it with a traceback.
"""

import os
import sys
from decimal import Decimal

import ccxt

SYMBOL = "BTC/USDT"
MARKET_ID = "BTCUSDT"
LIMIT_QTY = Decimal("0.001")
MARKET_BUY_QTY = Decimal("0.01")
MARKET_SELL_QTY = Decimal("0.005")
CLIENT_ID = "bulwarkThirdPartyLimit1"
# Amounts travel as decimal strings with 8 places; ccxt turns some into floats, which are compared
# to the exact value within this much.
EPSILON = Decimal("0.000000005")


def env(name, default=None):
    value = os.environ.get(name, default)
    if not value:
        sys.exit(f"binance_client.py: {name} is not set")
    return value


def dec(value):
    """A ccxt number (float or string) as a Decimal, without binary noise."""
    assert value is not None, "a number was expected"
    return Decimal(str(value))


def close(actual, expected, what):
    assert abs(dec(actual) - Decimal(expected)) <= EPSILON, f"{what}: {actual} != {expected}"


def step(text):
    print(f"  {text}", flush=True)


def expect_error(call, kinds, evidence):
    """`call` must raise one of ccxt's `kinds` whose text holds `evidence`: Binance's error code
    (`"code":-2013`) or, where ccxt matches the message instead, the message."""
    try:
        call()
    except kinds as error:
        assert evidence in str(error).replace('": ', '":'), f"{evidence!r} expected: {error}"
        return
    raise AssertionError(f"{kinds} ({evidence}) expected, the call succeeded")


def make_client(base_url, api_key, secret):
    exchange = ccxt.binance(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": True,
            "options": {
                # Spot only: the futures and options exchanges (fapi, dapi, eapi) are not simulated.
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                # fetchCurrencies reads /sapi/v1/capital/config/getall and fetchMargins the margin
                # pair lists: neither is a spot endpoint Bulwark uses, and the simulator serves no
                # capital (wallet) endpoint at all. ccxt then derives currencies from the markets.
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    # The one change for the simulator: the base URLs. Only the REST families the simulator serves
    # are listed, so a call to any other one fails in ccxt instead of leaving the machine.
    exchange.urls["api"] = {
        "public": f"{base_url}/api/v3",
        "private": f"{base_url}/api/v3",
        "v1": f"{base_url}/api/v1",
        "sapi": f"{base_url}/sapi/v1",
    }
    return exchange


def balances_of(exchange):
    balance = exchange.fetch_balance()
    # ccxt's parsed view and the raw reply must agree.
    raw = {entry["asset"]: entry for entry in balance["info"]["balances"]}
    for asset, entry in raw.items():
        close(balance[asset]["free"], entry["free"], f"{asset} free")
        close(balance[asset]["used"], entry["locked"], f"{asset} used")
    return {asset: (Decimal(entry["free"]), Decimal(entry["locked"])) for asset, entry in raw.items()}


def main():
    base_url = env("EXCHANGE_SIM_URL").rstrip("/")
    assert base_url.startswith(("http://127.", "http://localhost", "http://[::1]")), "loopback only"
    start = {}
    for item in env("EXCHANGE_SIM_BALANCES", "USDT=10000,BTC=0.5").split(","):
        asset, amount = item.split("=")
        start[asset.strip().upper()] = Decimal(amount)
    exchange = make_client(base_url, env("EXCHANGE_SIM_API_KEY"), env("EXCHANGE_SIM_API_SECRET"))
    print(f"ccxt {ccxt.__version__} against {base_url}")

    # Markets (exchangeInfo).
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets), sorted(markets)
    market = exchange.market(SYMBOL)
    assert market["id"] == MARKET_ID and market["spot"] and market["active"], market
    assert (market["base"], market["quote"]) == ("BTC", "USDT"), market
    close(market["precision"]["price"], "0.01", "tick size")
    close(market["precision"]["amount"], "0.00001", "step size")
    close(market["limits"]["amount"]["min"], "0.00001", "min qty")
    close(market["limits"]["cost"]["min"], "5", "min notional")
    step(f"load_markets: {len(markets)} markets, {SYMBOL} tick 0.01, step 0.00001")

    # Balances (account).
    before = balances_of(exchange)
    for asset, amount in start.items():
        assert before[asset] == (amount, Decimal(0)), f"{asset}: {before[asset]} != {amount} free"
    step(f"fetch_balance: {', '.join(f'{a} {f}' for a, (f, _) in sorted(before.items()))}")

    ticker = exchange.fetch_ticker(SYMBOL)
    last = dec(ticker["last"])
    assert last > 0, ticker
    step(f"fetch_ticker: last {last}")

    # A limit buy well below the price rests on the book and locks its quote.
    limit_price = (last * Decimal("0.8")).quantize(Decimal("0.01"))
    order = exchange.create_order(
        SYMBOL, "limit", "buy", float(LIMIT_QTY), float(limit_price), {"clientOrderId": CLIENT_ID}
    )
    order_id = order["id"]
    assert order["clientOrderId"] == CLIENT_ID, order
    assert order["status"] == "open" and order["type"] == "limit" and order["side"] == "buy", order
    close(order["amount"], LIMIT_QTY, "limit amount")
    close(order["price"], limit_price, "limit price")
    close(order["filled"], 0, "limit filled")
    close(order["remaining"], LIMIT_QTY, "limit remaining")
    assert order["trades"] == [], order["trades"]
    locked = LIMIT_QTY * limit_price
    during = balances_of(exchange)
    assert during["USDT"] == (before["USDT"][0] - locked, locked), during["USDT"]
    step(f"create_order limit buy {LIMIT_QTY} @ {limit_price}: id {order_id}, open, {locked} USDT locked")

    by_id = exchange.fetch_order(order_id, SYMBOL)
    by_client_id = exchange.fetch_order(None, SYMBOL, {"clientOrderId": CLIENT_ID})
    for found in (by_id, by_client_id):
        assert found["id"] == order_id and found["clientOrderId"] == CLIENT_ID, found
        assert found["status"] == "open", found
        close(found["amount"], LIMIT_QTY, "queried amount")
        close(found["price"], limit_price, "queried price")
    open_orders = exchange.fetch_open_orders(SYMBOL)
    assert [o["id"] for o in open_orders] == [order_id], open_orders
    step("fetch_order by id and by client id, fetch_open_orders: open")

    canceled = exchange.cancel_order(order_id, SYMBOL)
    assert canceled["id"] == order_id and canceled["status"] == "canceled", canceled
    assert exchange.fetch_order(order_id, SYMBOL)["status"] == "canceled"
    assert exchange.fetch_open_orders(SYMBOL) == []
    assert balances_of(exchange)["USDT"] == before["USDT"], "the cancel releases the locked USDT"
    step("cancel_order: canceled, USDT released")

    # Refusals reach ccxt as Binance's codes and messages, so it raises its own error classes.
    expect_error(
        lambda: exchange.cancel_order(order_id, SYMBOL), (ccxt.OrderNotFound, ccxt.OperationRejected), '"code":-2011'
    )
    expect_error(lambda: exchange.fetch_order("987654321", SYMBOL), ccxt.OrderNotFound, '"code":-2013')
    expect_error(
        lambda: exchange.create_order(SYMBOL, "limit", "buy", 0.0001, float(limit_price)),
        ccxt.BadRequest,
        '"code":-1013,"msg":"Filter failure: NOTIONAL"',
    )
    too_much = (before["USDT"][0] / last * 2).quantize(Decimal("0.00001"))
    expect_error(
        lambda: exchange.create_order(SYMBOL, "market", "buy", float(too_much)),
        ccxt.InsufficientFunds,
        "Account has insufficient balance for requested action.",
    )
    wrong_secret = make_client(base_url, exchange.apiKey, exchange.secret + "x")
    wrong_secret.load_markets()
    expect_error(wrong_secret.fetch_balance, ccxt.AuthenticationError, '"code":-1022')
    assert exchange.fetch_open_orders(SYMBOL) == [] and balances_of(exchange) == before
    step("refusals: OrderNotFound, NOTIONAL filter, InsufficientFunds, AuthenticationError")

    # Market buy, then market sell: filled at once, the fee taken in the asset received.
    buy = exchange.create_order(SYMBOL, "market", "buy", float(MARKET_BUY_QTY))
    sell = exchange.create_order(SYMBOL, "market", "sell", float(MARKET_SELL_QTY))
    fills = {}
    for placed, qty, fee_asset in ((buy, MARKET_BUY_QTY, "BTC"), (sell, MARKET_SELL_QTY, "USDT")):
        assert placed["status"] == "closed" and placed["type"] == "market", placed
        close(placed["amount"], qty, "market amount")
        close(placed["filled"], qty, "market filled")
        close(placed["remaining"], 0, "market remaining")
        info = placed["info"]
        assert Decimal(info["executedQty"]) == qty, info
        assert placed["trades"], "newOrderRespType FULL returns the fills"
        assert placed["fee"]["currency"] == fee_asset, placed["fee"]
        fills[placed["id"]] = {
            "side": placed["side"],
            "qty": qty,
            "quote": Decimal(info["cummulativeQuoteQty"]),
            "fee_asset": fee_asset,
            "fee": sum(Decimal(fill["commission"]) for fill in info["fills"]),
        }
        close(placed["cost"], fills[placed["id"]]["quote"], "market cost")
        step(
            f"create_order market {placed['side']} {qty}: {placed['status']}, average "
            f"{placed['average']}, fee {fills[placed['id']]['fee']} {fee_asset}"
        )

    # Our trades: every fill of both market orders, amounts and fees as the orders reported them.
    trades = exchange.fetch_my_trades(SYMBOL)
    assert {trade["order"] for trade in trades} == set(fills), trades
    for order_id, expected in fills.items():
        mine = [trade for trade in trades if trade["order"] == order_id]
        assert all(trade["side"] == expected["side"] for trade in mine), mine
        assert all(trade["fee"]["currency"] == expected["fee_asset"] for trade in mine), mine
        assert all(trade["takerOrMaker"] == "taker" for trade in mine), mine
        assert sum(Decimal(trade["info"]["qty"]) for trade in mine) == expected["qty"], mine
        assert sum(Decimal(trade["info"]["quoteQty"]) for trade in mine) == expected["quote"], mine
        assert sum(Decimal(trade["info"]["commission"]) for trade in mine) == expected["fee"], mine
        for trade in mine:
            close(trade["amount"], trade["info"]["qty"], "trade amount")
            close(trade["price"], trade["info"]["price"], "trade price")
            close(trade["fee"]["cost"], trade["info"]["commission"], "trade fee")
    step(f"fetch_my_trades: {len(trades)} trades, fees in the asset received")

    # The balances add up: what was bought less its fee, what was sold, what was paid and received.
    after = balances_of(exchange)
    buy_fill, sell_fill = fills[buy["id"]], fills[sell["id"]]
    btc = before["BTC"][0] + buy_fill["qty"] - buy_fill["fee"] - sell_fill["qty"]
    usdt = before["USDT"][0] - buy_fill["quote"] + sell_fill["quote"] - sell_fill["fee"]
    assert after["BTC"] == (btc, Decimal(0)), (after["BTC"], btc)
    assert after["USDT"] == (usdt, Decimal(0)), (after["USDT"], usdt)
    step(f"fetch_balance: BTC {after['BTC'][0]}, USDT {after['USDT'][0]}")
    print("binance_client.py: ccxt ran every step against exchange-sim")


if __name__ == "__main__":
    main()
