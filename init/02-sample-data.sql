-- Sample rows for trying the system out, inserted the way another system
-- would: only id, content and phone_number.
INSERT INTO messages (id, content, phone_number) VALUES
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e01', 'Welcome to Messaging Server!', '+905551111111'),
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e02', 'Your verification code is 123456', '+905552222222'),
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e03', 'Your order has shipped.', '+905553333333'),
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e04', 'Reminder: your appointment is tomorrow at 10:00.', '+905554444444'),
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e05', 'Thank you for your payment.', '+905555555555'),
    ('3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e06', 'Your password was changed.', '+905556666666')
ON CONFLICT (id) DO NOTHING;
