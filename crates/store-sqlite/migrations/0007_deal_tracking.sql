-- What a deal tracks for its trailing exits: the best price since it bought (a trailing stop loss
-- follows it) and the best price since its last take-profit target was reached (a trailing take
-- profit closes a deviation back from it). Decimals as text, like every price.
ALTER TABLE deals ADD COLUMN best_price TEXT;
ALTER TABLE deals ADD COLUMN trailing_peak TEXT;
