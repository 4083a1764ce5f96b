using SecretsBroker.Benchmarks.Harness;

return args switch
{
    ["requests", var directory, var mount, var count] => Commands.WriteRequests(directory, mount, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture)),
    ["verify", var address, var token, var requestFile, var expectedSource, var responseFile] =>
        await Commands.VerifyAsync(new Uri(address), token, requestFile, expectedSource, responseFile),
    ["audit", var redis, var stream, var afterId] => await Commands.CountAuditAsync(redis, stream, afterId),
    ["jwt", var directory, var issuer, var audience] => Commands.WriteJwt(directory, issuer, audience),
    ["jwt", var directory, var issuer, var audience, var count] => Commands.WriteJwt(directory, issuer, audience, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture)),
    ["warm", var address, var token, var mount, var count] => await Curves.WarmAsync(new Uri(address), token, mount, int.Parse(count, System.Globalization.CultureInfo.InvariantCulture)),
    ["warm-callers", var address, var tokens, var mount] => await Curves.WarmCallersAsync(new Uri(address), tokens, mount),
    ["load", var address, var seconds, var connections, var concurrency, var mount, var count, var tokens] =>
        await Curves.LoadAsync(new Uri(address), Int(seconds), Int(connections), Int(concurrency), mount, Int(count), tokens),
    _ => Commands.Usage(),
};

static int Int(string text) => int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
